// airlock's built-in YARA rules: namespace "builtin", run over every leaf airlock scans (a
// file, or an archive member that is not itself an archive).
//
// Externals set by airlock for each leaf (user rules may use them too):
//   airlock_model  bool    the leaf is a model file (pickle, HDF5, safetensors, GGUF, npy, ONNX)
//   airlock_kind   string  the sniffed type: pickle, hdf5, safetensors, gguf, npy, onnx, json,
//                          unscannable or other
//   airlock_name   string  the innermost name (archive member name, else the file name)
//
// meta.severity is one of malicious, suspicious, invalid; rules without it are malicious.
// Leaves larger than the whole-scan limit are scanned in blocks: there only strings count
// (filesize, uint32() and modules are undefined), which is why these rules are written with
// patterns alone.

rule eicar_test_file
{
    meta:
        severity = "malicious"
        description = "the EICAR anti-virus test string"
    strings:
        $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    condition:
        $eicar
}

rule reverse_shell
{
    meta:
        severity = "malicious"
        description = "a shell wired to a network connection"
    strings:
        // bash's own binary contains "/dev/tcp/" (it implements the redirection), and man
        // pages show "echo x > /dev/udp/HOST/PORT": a TCP host and port opened read-write
        // (<>, >&) or wired to stdin (0<&1, 0>&1) are required.
        $dev_tcp = /(<>|>&) ?\/dev\/tcp\/[A-Za-z0-9.:-]{1,253}\/[0-9]{1,5}/
        $dev_tcp_stdin = /\/dev\/tcp\/[A-Za-z0-9.:-]{1,253}\/[0-9]{1,5} ?0(<&|>&)1/
        $bash_i = "bash -i >&"
        $nc_e = /\bn(c|cat|etcat) (-[a-z]+ )*-[a-z]*e \/bin\/(ba|z|da)?sh/
        $pty = /pty\.spawn\(["']\/bin\/(ba|z|da)?sh/
        // The Python one-liner: a socket connected out, then dup2'ed onto stdin (a CGI server
        // dup2s its request file, hence the socket and connect on the same line).
        $py_socket = /socket\.socket\([^\n]{0,200}\.connect\(\([^\n]{0,200}os\.dup2\(/
        $socat = /socat [^\n]{0,200}exec:["']?(\/bin\/)?(ba|z|da)?sh/ nocase
    condition:
        any of them
}

rule download_and_run_script
{
    meta:
        severity = "suspicious"
        description = "a script that downloads code and pipes it into a shell or interpreter (unreviewed code where it can reach a network, a failure on an air-gapped rack)"
    strings:
        $pipe = /\b(curl|wget)\s[^\n]{0,400}\|\s*(sudo\s+)?(ba|z|da)?sh\b/
        $py = /\b(curl|wget)\s[^\n]{0,400}\|\s*(sudo\s+)?python[0-9.]*\b/
        $ps = /powershell(\.exe)? [^\n]{0,40}-e(nc|ncodedcommand)? [A-Za-z0-9+\/=]{20}/ nocase
    condition:
        // Only scripts (a "#!" first line): documentation that mentions such a command is
        // not flagged.
        not airlock_model and uint16(0) == 0x2123 and any of them
}

rule download_and_run_in_model
{
    meta:
        severity = "malicious"
        description = "a model file that carries a download-and-run command"
    strings:
        $pipe = /\b(curl|wget)\s[^\n]{0,400}\|\s*(sudo\s+)?(ba|z|da)?sh\b/
        $py = /\b(curl|wget)\s[^\n]{0,400}\|\s*(sudo\s+)?python[0-9.]*\b/
        $ps = /powershell(\.exe)? [^\n]{0,40}-e(nc|ncodedcommand)? [A-Za-z0-9+\/=]{20}/ nocase
    condition:
        airlock_model and any of them
}

rule executable_in_model
{
    meta:
        severity = "malicious"
        description = "an ELF or PE executable embedded in a model file"
    strings:
        // e_ident: class 1|2, data 1|2, version 1, then OS ABI, ABI version and seven bytes
        // of zero padding, then e_type 1..4 (little- or big-endian).
        $elf = { 7F 45 4C 46 (01|02) (01|02) 01 ?? ?? 00 00 00 00 00 00 00 ( (01|02|03|04) 00 | 00 (01|02|03|04) ) }
        // MZ header followed by the DOS stub every linker writes.
        $pe = { 4D 5A [58-200] 54 68 69 73 20 70 72 6F 67 72 61 6D 20 63 61 6E 6E 6F 74 20 62 65 20 72 75 6E }
    condition:
        airlock_model and any of them
}
