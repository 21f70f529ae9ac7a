"""The command line in a subprocess, shared by tests/test_cli_convert.py and
tests/test_cli_frames.py."""
import os
import pty
import subprocess
import sys


def cli(*args, check_rc=None, **kwargs) -> subprocess.CompletedProcess:
    """``python -m bfast_archive *args`` (captured, 120 s at most); with
    ``check_rc``, its exit status must be that."""
    out = subprocess.run([sys.executable, "-m", "bfast_archive", *map(str, args)],
                         capture_output=True, timeout=120, **kwargs)
    if check_rc is not None:
        assert out.returncode == check_rc, (out.returncode, out.stdout, out.stderr)
    return out


def one_error_line(out, path) -> str:
    """The one line a failed command wrote (exit 1, nothing on stdout), naming ``path``."""
    err = out.stderr.decode()
    assert out.returncode == 1 and out.stdout == b""
    assert err.startswith(f"bfast-archive: {path}: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def convert_on_a_terminal(src, dst) -> tuple:
    """``convert src dst`` with its stderr on a pseudo-terminal (progress is
    shown only there): the finished process and what the terminal showed."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "bfast_archive", "convert", str(src),
                               str(dst)], stdout=subprocess.PIPE, stderr=slave, timeout=120)
        os.close(slave)
        slave = None
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    return proc, b"".join(chunks).decode()
