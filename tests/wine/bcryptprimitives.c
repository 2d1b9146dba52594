/* A stand-in for bcryptprimitives.dll under Wine 8, which lacks ProcessPrng (Rust's
 * standard library needs it on Windows). It answers from RtlGenRandom
 * (advapi32!SystemFunction036). Used only by the tests and benchmarks that run
 * sverka-agent.exe under Wine; never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
