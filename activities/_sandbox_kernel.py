"""The kernel layers of the Code step sandbox (Linux): no_new_privs, Landlock and seccomp, applied by the child
(``_sandbox_runner.py``, which loads this file by its path) before the script runs. Standard library only: it
runs in the isolated child, where the project is not importable.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
from typing import NamedTuple


# ---- seccomp -------------------------------------------------------------------------------------------
# Syscall numbers: x86_64 from arch/x86/entry/syscalls, aarch64 from asm-generic/unistd.h (only x86_64 is
# exercised by the test suite). "deny" answers EPERM; clone3 answers ENOSYS so libc falls back to clone,
# whose flags a filter can read (threads yes, processes no).
class _Syscalls(NamedTuple):
    arch: int
    clone: int
    clone3: int
    tgkill: int
    prlimit64: int
    socket: int
    deny: tuple[int, ...]


_SECCOMP = {
    "x86_64": _Syscalls(0xC000003E, clone=56, clone3=435, tgkill=234, prlimit64=302, socket=41, deny=(
        57, 58, 59, 322, 62, 200, 129, 297, 424, 434, 438, 101, 310, 311, 160, 272, 308, 165, 166, 155, 161, 428,
        429, 430, 431, 432, 433, 442, 321, 298, 323, 425, 426, 427, 250, 248, 249, 135, 246, 320, 175, 313, 176,
        169, 167, 168, 163, 172, 173, 303, 304, 133, 259, 103, 153, 170, 171, 164, 227, 159, 305, 440)),
    "aarch64": _Syscalls(0xC00000B7, clone=220, clone3=435, tgkill=131, prlimit64=261, socket=198, deny=(
        221, 281, 129, 130, 138, 240, 424, 434, 438, 117, 270, 271, 164, 97, 268, 40, 39, 41, 51, 428, 429, 430,
        431, 432, 433, 442, 280, 241, 282, 425, 426, 427, 219, 217, 218, 92, 104, 294, 105, 273, 106, 142, 224,
        225, 89, 264, 265, 33, 116, 58, 161, 162, 170, 112, 171, 266, 440)),
}
_LD, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _KILL, _EPERM, _ENOSYS = 0x7FFF0000, 0x80000000, 0x00050001, 0x00050026
_CLONE_THREAD = 0x00010000
# Landlock filesystem rights (linux/landlock.h)
_LL_EXECUTE, _LL_WRITE_FILE, _LL_READ_FILE, _LL_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_LL_FILE_RIGHTS = _LL_EXECUTE | _LL_WRITE_FILE | _LL_READ_FILE | 1 << 14 | 1 << 15  # + TRUNCATE, IOCTL_DEV


def _seccomp_program(allow_network: bool) -> bytes | None:
    """The BPF filter as bytes, or None on an architecture without a table."""
    table = _SECCOMP.get(os.uname().machine)
    if table is None:
        return None

    def arg(n: int, high: bool = False) -> tuple[int, int, int, int]:
        return (_LD, 0, 0, 16 + 8 * n + (4 if high else 0))  # seccomp_data.args[n], little-endian halves

    def when(nr: int, inner: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
        return [(_JEQ, 0, len(inner), nr), *inner]  # skip the block unless the syscall is nr

    prog = [(_LD, 0, 0, 4), (_JEQ, 1, 0, table.arch), (_RET, 0, 0, _KILL), (_LD, 0, 0, 0)]
    if table.arch == 0xC000003E:
        prog += [(_JGE, 0, 1, 0x40000000), (_RET, 0, 0, _EPERM)]  # the x32 ABI numbers alias the table
    for nr in table.deny:
        prog += when(nr, [(_RET, 0, 0, _EPERM)])
    prog += when(table.clone3, [(_RET, 0, 0, _ENOSYS)])
    prog += when(table.clone, [arg(0), (_JSET, 0, 1, _CLONE_THREAD), (_RET, 0, 0, _ALLOW),
                                  (_RET, 0, 0, _EPERM)])
    prog += when(table.tgkill, [arg(0), (_JEQ, 0, 1, os.getpid()), (_RET, 0, 0, _ALLOW),
                                   (_RET, 0, 0, _EPERM)])
    prog += when(table.prlimit64, [arg(2), (_JEQ, 0, 3, 0), arg(2, True), (_JEQ, 0, 1, 0),
                                      (_RET, 0, 0, _ALLOW), (_RET, 0, 0, _EPERM)])  # reading limits is fine
    if allow_network:
        prog += when(table.socket, [arg(0), (_JEQ, 2, 0, socket.AF_INET), (_JEQ, 1, 0, socket.AF_INET6),
                                       (_RET, 0, 0, _EPERM), (_RET, 0, 0, _ALLOW)])
    else:
        prog += when(table.socket, [(_RET, 0, 0, _EPERM)])
    prog.append((_RET, 0, 0, _ALLOW))
    return b"".join(struct.pack("HBBI", *ins) for ins in prog)


def harden(scratch: str, read_roots: list[str], allow_network: bool) -> list[str]:
    """Apply the kernel layers; returns the names of those applied (missing ones are left to the hook)."""
    if sys.platform != "linux":
        return []
    import ctypes  # loaded for this function only, then hidden from the script

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    layers: list[str] = []
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS: required by both layers below
        return layers
    layers.append("no_new_privs")
    abi = libc.syscall(444, None, 0, 1)  # landlock_create_ruleset(NULL, 0, VERSION)
    if abi >= 1:
        # ABI 1: bits 0-12; 2: REFER (13); 3: TRUNCATE (14); 5: IOCTL_DEV (15). Handling every right the
        # kernel knows means whatever no rule grants is refused.
        fs_all = (1 << 13) - 1 | (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0) | (
            1 << 15 if abi >= 5 else 0)
        net = 0 if allow_network or abi < 4 else 3  # BIND_TCP | CONNECT_TCP, with no rule allowing any port
        scoped = 3 if abi >= 6 else 0  # no signals and no abstract unix sockets across the sandbox edge
        attr = struct.pack("QQQ", fs_all, net, scoped)[: 8 if abi < 4 else 16 if abi < 6 else 24]
        ruleset = libc.syscall(444, ctypes.c_char_p(attr), len(attr), 0)
        rules = [(p, _LL_READ_FILE | _LL_READ_DIR) for p in read_roots] + [
            (scratch, fs_all), ("/dev/null", _LL_READ_FILE | _LL_WRITE_FILE)]
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            if not os.path.isdir(path):
                rights &= _LL_FILE_RIGHTS  # a rule on a file may only carry rights that apply to files
            rule = struct.pack("=Qi", rights & fs_all, fd)
            libc.syscall(445, ruleset, 1, ctypes.c_char_p(rule), 0)
            os.close(fd)
        if ruleset >= 0 and libc.syscall(446, ruleset, 0) == 0:
            layers.append(f"landlock-abi{abi}")
    prog = _seccomp_program(allow_network)
    if prog is not None:
        buf = ctypes.create_string_buffer(prog, len(prog))

        class _Fprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        fprog = _Fprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
        if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
            layers.append("seccomp")
    if os.geteuid() == 0:  # root in the child keeps uid 0 but loses every privilege that goes with it
        for cap in range(64):
            libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP
        header = struct.pack("Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
        if libc.capset(ctypes.c_char_p(header), ctypes.c_char_p(bytes(24))) == 0:
            layers.append("no_capabilities")
    for name in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
        del sys.modules[name]
    return layers
