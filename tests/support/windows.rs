//! Windows fixtures: programs with a version resource built by mingw (windres + gcc),
//! fake Windows volumes for `--root`, and throwaway Wine prefixes in which the real
//! `sverka-agent.exe` (cross-compiled for x86_64-pc-windows-gnu) runs.

use serde_json::Value;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tempfile::TempDir;

use crate::{Run, require_tool};

/// The committed fixture hives (see `tests/fixtures/windows/make-hives.py`).
pub fn fixture_hive(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/windows")
        .join(name)
}

/// The strings of a program's version resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Version<'a> {
    pub company: &'a str,
    pub product: &'a str,
    pub original_filename: &'a str,
    pub description: &'a str,
}

/// Telegram Desktop's version resource, as its installer ships it.
pub const TELEGRAM: Version<'static> = Version {
    company: "Telegram FZ-LLC",
    product: "Telegram Desktop",
    original_filename: "Telegram.exe",
    description: "Telegram Desktop",
};
/// Viber's version resource, as its installer ships it.
pub const VIBER: Version<'static> = Version {
    company: "Viber Media S.à r.l.",
    product: "Viber",
    original_filename: "Viber.exe",
    description: "Viber",
};

fn scratch() -> &'static Path {
    static DIR: OnceLock<TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir"))
        .path()
}

/// A Windows program (PE32+) carrying a version resource, built once per distinct
/// version by mingw's windres and gcc. Run with the argument `wait`, it sleeps for ten
/// minutes (to be seen as a running process); a second argument names a file it creates
/// first, once Windows runs it.
pub fn program_with_version(version: &Version<'_>) -> Vec<u8> {
    program_with_version_for(version, WineArch::Win64)
}

/// The same program as [`program_with_version`], 32-bit (PE32) for `WineArch::Win32`,
/// which runs in a 32-bit prefix.
pub fn program_with_version_for(version: &Version<'_>, arch: WineArch) -> Vec<u8> {
    static BUILT: OnceLock<Mutex<HashMap<String, Vec<u8>>>> = OnceLock::new();
    let key = format!("{arch:?} {version:?}");
    let built = BUILT.get_or_init(Default::default);
    if let Some(bytes) = built.lock().expect("lock").get(&key) {
        return bytes.clone();
    }
    let (windres, gcc) = match arch {
        WineArch::Win64 => (
            require_tool("x86_64-w64-mingw32-windres", "binutils-mingw-w64-x86-64"),
            require_tool("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64"),
        ),
        WineArch::Win32 => (
            require_tool("i686-w64-mingw32-windres", "binutils-mingw-w64-i686"),
            require_tool("i686-w64-mingw32-gcc", "gcc-mingw-w64-i686"),
        ),
    };
    let dir = tempfile::tempdir_in(scratch()).expect("tempdir");
    let mut values = String::new();
    for (name, value) in [
        ("CompanyName", version.company),
        ("ProductName", version.product),
        ("OriginalFilename", version.original_filename),
        ("FileDescription", version.description),
        ("ProductVersion", "1.0.0.0"),
    ] {
        if !value.is_empty() {
            values.push_str(&format!("      VALUE \"{name}\", \"{value}\"\n"));
        }
    }
    let rc = format!(
        "#pragma code_page(65001)\n1 VERSIONINFO\nFILEVERSION 1,0,0,0\nPRODUCTVERSION 1,0,0,0\nBEGIN\n  BLOCK \"StringFileInfo\"\n  BEGIN\n    BLOCK \"040904b0\"\n    BEGIN\n{values}    END\n  END\n  BLOCK \"VarFileInfo\"\n  BEGIN\n    VALUE \"Translation\", 0x409, 1200\n  END\nEND\n"
    );
    fs::write(dir.path().join("version.rc"), rc).expect("write rc");
    fs::write(
        dir.path().join("program.c"),
        "#include <windows.h>\n#include <string.h>\nint main(int argc, char **argv) {\n    if (argc > 2) CloseHandle(CreateFileA(argv[2], GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL));\n    if (argc > 1 && strcmp(argv[1], \"wait\") == 0) Sleep(600000);\n    return 0;\n}\n",
    )
    .expect("write c");
    let status = Command::new(windres)
        .current_dir(dir.path())
        .args(["-c", "65001", "version.rc", "-O", "coff", "-o", "version.o"])
        .status()
        .expect("run windres");
    assert!(status.success(), "windres failed");
    let status = Command::new(gcc)
        .current_dir(dir.path())
        .args(["-Os", "-s", "-o", "program.exe", "program.c", "version.o"])
        .status()
        .expect("run gcc");
    assert!(status.success(), "mingw gcc failed");
    let bytes = fs::read(dir.path().join("program.exe")).expect("read exe");
    built.lock().expect("lock").insert(key, bytes.clone());
    bytes
}

fn varint(mut value: usize, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The key of an installed app's record in a web app database.
pub fn web_app_key(app_id: &str) -> Vec<u8> {
    format!("web_apps-dt-{app_id}").into_bytes()
}

/// An installed app's protocol-buffer record, as Chromium writes it.
pub fn web_app_record(name: &str, start_url: &str) -> Vec<u8> {
    fn field(number: usize, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(number << 3 | 2, &mut out);
        varint(bytes.len(), &mut out);
        out.extend_from_slice(bytes);
        out
    }
    let mut sync = field(1, start_url.as_bytes());
    sync.extend(field(2, name.as_bytes()));
    let mut proto = field(1, &sync);
    proto.extend(field(2, name.as_bytes()));
    proto
}

/// A LevelDB log of one write batch: puts (`Some` value) and deletions numbered from
/// `sequence` on.
pub fn leveldb_log(sequence: u64, operations: &[(&[u8], Option<&[u8]>)]) -> Vec<u8> {
    let mut batch = sequence.to_le_bytes().to_vec();
    batch.extend((operations.len() as u32).to_le_bytes());
    for (key, value) in operations {
        batch.push(u8::from(value.is_some()));
        varint(key.len(), &mut batch);
        batch.extend_from_slice(key);
        if let Some(value) = value {
            varint(value.len(), &mut batch);
            batch.extend_from_slice(value);
        }
    }
    let mut log = vec![0u8; 4];
    log.extend((batch.len() as u16).to_le_bytes());
    log.push(1);
    log.extend(batch);
    log
}

/// A table entry: user key, sequence number, value (`None`: a deletion).
pub type TableEntry<'a> = (&'a [u8], u64, Option<&'a [u8]>);

/// A LevelDB table (`*.ldb`) as a compaction writes it: one Snappy-compressed data
/// block of `entries` (user key, sequence number, value or deletion; sorted by key),
/// an empty metaindex block, an index block and the footer.
pub fn leveldb_table(entries: &[TableEntry<'_>]) -> Vec<u8> {
    const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    // Every entry a restart point: no shared key prefixes.
    fn block(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut block = Vec::new();
        let mut restarts = Vec::new();
        for (key, value) in entries {
            restarts.push(block.len() as u32);
            block.push(0);
            varint(key.len(), &mut block);
            varint(value.len(), &mut block);
            block.extend_from_slice(key);
            block.extend_from_slice(value);
        }
        if restarts.is_empty() {
            restarts.push(0);
        }
        for restart in &restarts {
            block.extend(restart.to_le_bytes());
        }
        block.extend((restarts.len() as u32).to_le_bytes());
        block
    }
    fn append(table: &mut Vec<u8>, raw: &[u8]) -> Vec<u8> {
        let data = snap::raw::Encoder::new()
            .compress_vec(raw)
            .expect("snappy compresses");
        let mut handle = Vec::new();
        varint(table.len(), &mut handle);
        varint(data.len(), &mut handle);
        let mut digest = CASTAGNOLI.digest();
        digest.update(&data);
        digest.update(&[1]);
        let crc = digest.finalize();
        table.extend_from_slice(&data);
        table.push(1);
        table.extend(crc.rotate_right(15).wrapping_add(0xa282_ead8).to_le_bytes());
        handle
    }
    let internal: Vec<(Vec<u8>, Vec<u8>)> = entries
        .iter()
        .map(|&(key, sequence, value)| {
            let mut internal = key.to_vec();
            internal.extend((sequence << 8 | u64::from(value.is_some())).to_le_bytes());
            (internal, value.unwrap_or_default().to_vec())
        })
        .collect();
    let mut table = Vec::new();
    let data = append(&mut table, &block(&internal));
    let last_key = internal
        .last()
        .map(|(key, _)| key.clone())
        .unwrap_or_default();
    let mut footer = append(&mut table, &block(&[]));
    footer.extend(append(&mut table, &block(&[(last_key, data)])));
    footer.resize(40, 0);
    footer.extend(0xdb47_7524_8b80_fb57u64.to_le_bytes());
    table.extend(footer);
    table
}

/// A web app database log holding one installed app (LevelDB log record, write batch,
/// protocol-buffer record), as Chromium writes it.
pub fn web_app_log(app_id: &str, name: &str, start_url: &str) -> Vec<u8> {
    let record = web_app_record(name, start_url);
    leveldb_log(1, &[(&web_app_key(app_id), Some(&record))])
}

/// A file tree laid out like a mounted Windows system volume.
#[derive(Debug)]
pub struct WindowsVolume {
    dir: TempDir,
}

impl Default for WindowsVolume {
    fn default() -> Self {
        Self::new()
    }
}

impl WindowsVolume {
    /// An empty volume with `Windows\System32\config` and `Users`.
    pub fn new() -> WindowsVolume {
        let volume = WindowsVolume {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        volume.dir("C:\\Windows\\System32\\config");
        volume.dir("C:\\Users\\Public");
        volume
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where a Windows path of the volume lives.
    pub fn local(&self, windows_path: &str) -> PathBuf {
        windows_local(self.dir.path(), windows_path)
    }

    pub fn dir(&self, windows_path: &str) -> &Self {
        fs::create_dir_all(self.local(windows_path)).expect("create dir");
        self
    }

    pub fn file(&self, windows_path: &str, contents: impl AsRef<[u8]>) -> &Self {
        write_file(&self.local(windows_path), contents.as_ref());
        self
    }

    pub fn copy(&self, from: &Path, windows_path: &str) -> &Self {
        self.file(windows_path, fs::read(from).expect("read fixture"))
    }

    /// A volume with the fixture's machine hives (`SOFTWARE`, `SYSTEM`) and anna's
    /// logged-off profile (`NTUSER.DAT`).
    pub fn with_hives() -> WindowsVolume {
        let volume = WindowsVolume::new();
        volume
            .copy(
                &fixture_hive("SOFTWARE"),
                "C:\\Windows\\System32\\config\\SOFTWARE",
            )
            .copy(
                &fixture_hive("SYSTEM"),
                "C:\\Windows\\System32\\config\\SYSTEM",
            )
            .copy(
                &fixture_hive("anna-NTUSER.DAT"),
                "C:\\Users\\anna\\NTUSER.DAT",
            );
        volume
    }

    /// `sverka-agent scan --root <volume> --format json` (offline, on Linux).
    pub fn scan_json(&self) -> (i32, Value) {
        let run = crate::run_agent(&[
            "scan",
            "--root",
            &self.path().to_string_lossy(),
            "--format",
            "json",
        ]);
        (run.code, run.json())
    }
}

/// `C:\Users\anna` under `base` (`base/Users/anna`).
fn windows_local(base: &Path, windows_path: &str) -> PathBuf {
    let without_drive = windows_path
        .strip_prefix("C:")
        .or_else(|| windows_path.strip_prefix("c:"))
        .unwrap_or(windows_path);
    let mut local = base.to_path_buf();
    for part in without_drive.split('\\').filter(|part| !part.is_empty()) {
        local.push(part);
    }
    local
}

fn write_file(path: &Path, contents: &[u8]) {
    fs::create_dir_all(path.parent().expect("parent")).expect("create parent");
    fs::write(path, contents).expect("write");
}

/// A Windows target the agent is cross-compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowsTarget {
    /// `x86_64-pc-windows-gnu`: the x64 MSI's agent.
    X64,
    /// `i686-pc-windows-gnu`: the x86 MSI's agent, for 32-bit Windows.
    X86,
    /// `x86_64-win7-windows-gnu`: the Windows 7 agent (tier 3: its standard library is
    /// built from `rust-src` with `-Z build-std`).
    Win7X64,
    /// `i686-win7-windows-gnu`: the 32-bit Windows 7 agent, built the same way.
    Win7X86,
}

impl WindowsTarget {
    pub fn triple(self) -> &'static str {
        match self {
            WindowsTarget::X64 => "x86_64-pc-windows-gnu",
            WindowsTarget::X86 => "i686-pc-windows-gnu",
            WindowsTarget::Win7X64 => "x86_64-win7-windows-gnu",
            WindowsTarget::Win7X86 => "i686-win7-windows-gnu",
        }
    }

    /// The Windows this target's agent is for: 64-bit or 32-bit.
    pub fn wine_arch(self) -> WineArch {
        match self {
            WindowsTarget::X64 | WindowsTarget::Win7X64 => WineArch::Win64,
            WindowsTarget::X86 | WindowsTarget::Win7X86 => WineArch::Win32,
        }
    }

    /// The Windows 7 builds: std from `rust-src`, no `ProcessPrng` stand-in.
    pub fn is_windows_7(self) -> bool {
        matches!(self, WindowsTarget::Win7X64 | WindowsTarget::Win7X86)
    }

    /// The mingw-w64 C compiler for this target and the Debian package that has it.
    fn mingw_gcc(self) -> (&'static str, &'static str) {
        match self {
            WindowsTarget::X64 | WindowsTarget::Win7X64 => {
                ("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64")
            }
            WindowsTarget::X86 | WindowsTarget::Win7X86 => {
                ("i686-w64-mingw32-gcc", "gcc-mingw-w64-i686")
            }
        }
    }
}

/// `sverka-agent.exe` for x86_64-pc-windows-gnu, cross-compiled once per test process,
/// with the `ProcessPrng` stand-in DLL beside it (Wine 8 lacks that export, which
/// Rust's std needs).
pub fn agent_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| cross_compile_agent(WindowsTarget::X64))
}

/// `sverka-agent.exe` for i686-pc-windows-gnu (32-bit Windows), built once per test
/// process (a debug build), with its own 32-bit `ProcessPrng` stand-in beside it.
pub fn agent_exe_x86() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| cross_compile_agent(WindowsTarget::X86))
}

/// `sverka-agent.exe` for x86_64-win7-windows-gnu (Windows 7 SP1), built once per test
/// process (a debug build) as `packaging/build-all.sh` builds it, in its own target
/// folder; no `ProcessPrng` stand-in beside it, since it does not call that.
pub fn agent_exe_win7() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| cross_compile_agent(WindowsTarget::Win7X64))
}

/// `sverka-agent.exe` for i686-win7-windows-gnu (32-bit Windows 7 SP1), built as
/// [`agent_exe_win7`] is.
pub fn agent_exe_win7_x86() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| cross_compile_agent(WindowsTarget::Win7X86))
}

/// The agent of `target`, for a test: x64, x86 or one of the Windows 7 builds.
pub fn agent_exe_for(target: WindowsTarget) -> &'static Path {
    match target {
        WindowsTarget::X64 => agent_exe(),
        WindowsTarget::X86 => agent_exe_x86(),
        WindowsTarget::Win7X64 => agent_exe_win7(),
        WindowsTarget::Win7X86 => agent_exe_win7_x86(),
    }
}

fn cross_compile_agent(target: WindowsTarget) -> PathBuf {
    let (gcc, gcc_package) = target.mingw_gcc();
    require_tool(gcc, gcc_package);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    if target.is_windows_7() {
        // As packaging/build-all.sh does: stable rustc builds std from rust-src with
        // RUSTC_BOOTSTRAP; windows-result then imports no WinRT error function.
        // The test binary is target/debug/deps/<test>: its own target folder's `win7`.
        let test_binary = std::env::current_exe().expect("the test binary's path");
        let target_dir = test_binary
            .ancestors()
            .nth(3)
            .expect("the target folder")
            .join("win7");
        command
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_DIR", target_dir)
            .env("RUSTFLAGS", "--cfg windows_slim_errors")
            .env(
                format!(
                    "CARGO_TARGET_{}_LINKER",
                    target.triple().to_uppercase().replace('-', "_")
                ),
                gcc,
            )
            .args(["-Z", "build-std=std,panic_abort"]);
    }
    let output = command
        .args([
            "build",
            "--quiet",
            "--target",
            target.triple(),
            "--package",
            "sverka-agent",
            "--bin",
            "sverka-agent",
            "--message-format=json",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo build");
    assert!(
        output.status.success(),
        "cargo build --target {} failed (the README's test command installs the target: rustup target add {}):\n{}",
        target.triple(),
        target.triple(),
        String::from_utf8_lossy(&output.stderr)
    );
    let exe = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == "sverka-agent"
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported sverka-agent.exe");
    if target.is_windows_7() {
        return exe;
    }
    let shim = Path::new(env!("CARGO_MANIFEST_DIR")).join("wine");
    let status = Command::new(gcc)
        .args(["-shared", "-O2", "-o"])
        .arg(exe.with_file_name("bcryptprimitives.dll"))
        .arg(shim.join("bcryptprimitives.c"))
        .arg(shim.join("bcryptprimitives.def"))
        .args(["-Wl,--kill-at", "-ladvapi32"])
        .status()
        .expect("run mingw gcc");
    assert!(status.success(), "building the ProcessPrng stand-in failed");
    exe
}

/// Which Windows a Wine prefix is: 64-bit (32-bit programs run under WOW64 there) or
/// 32-bit (`WINEARCH=win32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WineArch {
    Win64,
    Win32,
}

impl WineArch {
    /// The loader for this kind of prefix. Named explicitly: once Debian's `wine32` is
    /// installed beside `wine64` (the 32-bit agent's tests need it), plain `wine` is the
    /// 32-bit loader, which would run `regedit`, `reg`, `msiexec` and `cmd` as 32-bit
    /// programs even in a 64-bit prefix, writing the registry's 32-bit view.
    fn loader(self) -> PathBuf {
        let (candidates, package): (&[&str], &str) = match self {
            WineArch::Win64 => (&["/usr/lib/wine/wine64", "/usr/bin/wine64"], "wine64"),
            WineArch::Win32 => (&["/usr/lib/wine/wine"], "wine32:i386"),
        };
        candidates
            .iter()
            .map(PathBuf::from)
            .find(|candidate| candidate.is_file())
            .unwrap_or_else(|| {
                panic!("the Wine loader {} is missing: install the Debian package `{package}` (the README's test command does)", candidates[0])
            })
    }
}

/// A throwaway Wine prefix (`wineboot -i` in a temporary folder), 64-bit unless made
/// with [`WinePrefix::win32`]. Dropping it stops the programs it started and its
/// wineserver.
#[derive(Debug)]
pub struct WinePrefix {
    dir: TempDir,
    arch: WineArch,
    children: Vec<Child>,
}

impl Default for WinePrefix {
    fn default() -> Self {
        Self::new()
    }
}

impl WinePrefix {
    /// A 64-bit prefix (64-bit Windows).
    pub fn new() -> WinePrefix {
        Self::with_arch(WineArch::Win64)
    }

    /// A 32-bit prefix (`WINEARCH=win32`): 32-bit Windows.
    pub fn win32() -> WinePrefix {
        Self::with_arch(WineArch::Win32)
    }

    /// A prefix of `arch`: [`WinePrefix::new`] or [`WinePrefix::win32`].
    pub fn with_arch(arch: WineArch) -> WinePrefix {
        require_tool("wineserver", "wine");
        let prefix = WinePrefix {
            dir: tempfile::tempdir().expect("tempdir"),
            arch,
            children: Vec::new(),
        };
        let output = prefix
            .wine_command("wine")
            .args(["wineboot", "-i"])
            .output()
            .expect("run wineboot");
        assert!(
            output.status.success(),
            "wineboot -i failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        prefix.wait_for_wineserver();
        prefix.unlink_home_folders();
        prefix
    }

    /// Wine links the user's Desktop, Downloads, Music, ... to the Unix home folder;
    /// the agent would walk this machine's home there. Plain empty folders instead.
    fn unlink_home_folders(&self) {
        let users = self.local("C:\\users");
        for user in fs::read_dir(users).expect("users folder").flatten() {
            for entry in fs::read_dir(user.path()).expect("profile folder").flatten() {
                if entry.file_type().is_ok_and(|kind| kind.is_symlink()) {
                    fs::remove_file(entry.path()).expect("remove link");
                    fs::create_dir(entry.path()).expect("create folder");
                }
            }
        }
    }

    /// A command for `wine` (this prefix's loader) or `wineserver`, in this prefix.
    fn wine_command(&self, program: &str) -> Command {
        let mut command = match program {
            "wine" => Command::new(self.arch.loader()),
            other => Command::new(other),
        };
        if self.arch == WineArch::Win32 {
            command.env("WINEARCH", "win32");
        }
        command
            // What Wine starts new processes with (Debian's `wine` script sets it too).
            .env("WINELOADER", self.arch.loader())
            .env("WINEPREFIX", self.dir.path())
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree=;mshtml=")
            .env_remove("DISPLAY")
            .stdin(Stdio::null());
        command
    }

    fn wait_for_wineserver(&self) {
        let _ = self.wine_command("wineserver").arg("-w").status();
    }

    /// Where a path of the prefix's `C:` drive lives.
    pub fn local(&self, windows_path: &str) -> PathBuf {
        windows_local(&self.dir.path().join("drive_c"), windows_path)
    }

    pub fn file(&self, windows_path: &str, contents: impl AsRef<[u8]>) -> &Self {
        write_file(&self.local(windows_path), contents.as_ref());
        self
    }

    pub fn dir(&self, windows_path: &str) -> &Self {
        fs::create_dir_all(self.local(windows_path)).expect("create dir");
        self
    }

    pub fn copy(&self, from: &Path, windows_path: &str) -> &Self {
        self.file(windows_path, fs::read(from).expect("read fixture"))
    }

    /// The name of the prefix's own (logged-on) user: its folder under `C:\users`.
    pub fn own_user(&self) -> String {
        fs::read_dir(self.local("C:\\users"))
            .expect("users folder")
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .find(|name| name != "Public")
            .expect("the prefix has a user")
    }

    /// Imports `.reg` text (without the header line) with `wine regedit /S`, written
    /// as UTF-16 so that names such as 微信 survive.
    pub fn registry(&self, entries: &str) -> &Self {
        let text = format!(
            "Windows Registry Editor Version 5.00\r\n\r\n{}\r\n",
            entries.replace('\n', "\r\n")
        );
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let file = self.dir.path().join("import.reg");
        fs::write(&file, bytes).expect("write .reg");
        let output = self
            .wine_command("wine")
            .args(["regedit", "/S"])
            .arg(&file)
            .output()
            .expect("run regedit");
        assert!(
            output.status.success(),
            "regedit failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // regedit returns before wineserver has written the registry files; the agent
        // reads through the same wineserver, so waiting for it is enough.
        self
    }

    /// Starts a program of the prefix (with the argument `wait`) and waits until it
    /// runs as a Windows process: it then creates a marker file, which is more than
    /// the program showing in /proc (on a loaded machine Wine may not list it yet).
    pub fn start(&mut self, windows_path: &str) {
        let marker = format!("C:\\sverka-started-{}", self.children.len());
        let child = self
            .wine_command("wine")
            .arg(windows_path)
            .arg("wait")
            .arg(&marker)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the program under wine");
        self.children.push(child);
        let started = Instant::now();
        while !self.local(&marker).exists() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{windows_path} did not start under wine"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `sverka-agent.exe scan --format json` inside the prefix (the x64 agent).
    pub fn scan_json(&self) -> (i32, Value) {
        self.scan_json_for(WindowsTarget::X64)
    }

    /// `sverka-agent.exe scan --format json` of the agent built for `target`.
    pub fn scan_json_for(&self, target: WindowsTarget) -> (i32, Value) {
        let run = self.run_agent_for(target, &["scan", "--format", "json"]);
        (run.code, run.json())
    }

    /// The prefix folder (`WINEPREFIX`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs a program of Wine (`msiexec`, `reg`, `net`, ...) or of the prefix, to the
    /// end. Its output goes through files, not pipes: a service it starts may inherit
    /// them and outlive it.
    pub fn wine(&self, args: &[&str]) -> Run {
        let stdout_file = self.dir.path().join("wine.stdout");
        let stderr_file = self.dir.path().join("wine.stderr");
        let status = self
            .wine_command("wine")
            .args(args)
            .stdout(fs::File::create(&stdout_file).expect("stdout file"))
            .stderr(fs::File::create(&stderr_file).expect("stderr file"))
            .status()
            .expect("run wine");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: fs::read_to_string(&stdout_file).unwrap_or_default(),
            stderr: fs::read_to_string(&stderr_file).unwrap_or_default(),
        }
    }

    /// Starts `wine cmd` waiting on its input: Wine ends its services with the last
    /// ordinary program, and this one keeps them running, as Windows would. Kill it
    /// (or drop the prefix) to end it.
    pub fn spawn_service_keeper(&self) -> Child {
        self.wine_command("wine")
            .arg("cmd")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wine cmd")
    }

    /// Starts the x64 agent in this prefix with `args`, its log (`SVERKA_LOG=info`) to
    /// `log`; kill it to end it (dropping the prefix ends what it started).
    pub fn spawn_agent(&self, args: &[&str], log: &Path) -> Child {
        self.wine_command("wine")
            .arg(agent_exe())
            .args(args)
            .env("SVERKA_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(log).expect("log file"))
            .spawn()
            .expect("start sverka-agent.exe under wine")
    }

    /// `sverka-agent.exe enroll` with `collector`'s `secret`, its state in `state` (a
    /// Windows path); fails the test unless it enrolls.
    pub fn enroll_agent(&self, server: &str, secret: &str, state: &str) {
        let enrolled = self.run_agent(&[
            "enroll",
            "--server",
            server,
            "--allow-http",
            "--secret",
            secret,
            "--state-dir",
            state,
        ]);
        assert_eq!(enrolled.code, 0, "{}", enrolled.stderr);
    }

    /// The x64 agent (`agent_exe`) in this prefix.
    pub fn run_agent(&self, args: &[&str]) -> Run {
        self.run_agent_for(WindowsTarget::X64, args)
    }

    /// The agent built for `target`, in this prefix.
    pub fn run_agent_for(&self, target: WindowsTarget, args: &[&str]) -> Run {
        let output = self
            .wine_command("wine")
            .arg(agent_exe_for(target))
            .args(args)
            .output()
            .expect("run sverka-agent.exe under wine");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Drop for WinePrefix {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.wine_command("wineserver").arg("-k").status();
        self.wait_for_wineserver();
    }
}
