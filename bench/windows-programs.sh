# Sourced by the Wine benchmarks: `windows_program DIR NAME COMPANY PRODUCT` builds
# DIR/NAME.exe, a small Windows program whose version resource names COMPANY and
# PRODUCT (mingw-w64's windres and gcc).
windows_program() {
    local dir=$1 name=$2 company=$3 product=$4
    cat >"$dir/$name.rc" <<EOF_RC
1 VERSIONINFO
FILEVERSION 1,0,0,0
BEGIN
  BLOCK "StringFileInfo"
  BEGIN
    BLOCK "040904b0"
    BEGIN
      VALUE "CompanyName", "$company"
      VALUE "ProductName", "$product"
    END
  END
END
EOF_RC
    echo 'int main(void) { return 0; }' >"$dir/main.c"
    x86_64-w64-mingw32-windres "$dir/$name.rc" -O coff -o "$dir/$name.o"
    x86_64-w64-mingw32-gcc -Os -s -o "$dir/$name.exe" "$dir/main.c" "$dir/$name.o"
}
