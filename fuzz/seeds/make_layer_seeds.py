#!/usr/bin/env python3
"""Writes the seed corpus of the layer_apply fuzz target into seeds/layer_apply/.

Each seed is one selector byte (bit 0: the target gzips the rest; bit 1: whiteouts remove
instead of marking, as for the native snapshotter) followed by a small layer. The layers are
the shapes the applier has to get right: plain files and links, names that climb out with
`..` or start with `/`, symlinks and hard links aimed at the bait beside the root, whiteouts
and opaque directories, PAX and GNU long names, xattrs, device nodes, and layers that are
already gzip or zstd compressed. Run it from anywhere; it replaces the seeds it writes.
"""

import gzip
import io
import pathlib
import shutil
import subprocess
import tarfile

OUT = pathlib.Path(__file__).resolve().parent / "layer_apply"
PLAIN, GZIP, REMOVE = 0, 1, 2


def entry(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644, pax=None):
    """One member description: (TarInfo, data)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mtime = 1_700_000_000
    if pax:
        info.pax_headers = pax
    return info, data


def layer(members, fmt=tarfile.GNU_FORMAT):
    """A tar stream of `members`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data else None)
    # tarfile pads to 10 KiB records; keep only the two zero blocks that end the archive.
    body = buf.getvalue().rstrip(b"\0")
    return body + b"\0" * (-len(body) % 512 + 1024)


def seeds():
    """(file name, selector, layer bytes) of every seed."""
    basic = layer([
        entry("./", tarfile.DIRTYPE, mode=0o755),
        entry("a/", tarfile.DIRTYPE, mode=0o755),
        entry("a/f", data=b"hello\n"),
        entry("a/s", tarfile.SYMTYPE, link="f"),
        entry("a/h", tarfile.LNKTYPE, link="a/f"),
    ])
    climbing = layer([
        entry("../escape", data=b"up one\n"),
        entry("../../escape2", data=b"up two\n"),
        entry("/abs/file", data=b"absolute\n"),
        entry("a/../../sentinel", data=b"overwrite?\n"),
        entry("../outside/bait", data=b"overwrite?\n"),
    ])
    symlinks = layer([
        entry("l", tarfile.SYMTYPE, link="../outside"),
        entry("l/evil", data=b"through a symlink\n"),
        entry("up", tarfile.SYMTYPE, link="../../"),
        entry("up/parent/sentinel", data=b"through a symlink\n"),
        entry("abs", tarfile.SYMTYPE, link="/"),
        entry("abs/tmp/evil", data=b"through an absolute symlink\n"),
        entry("dir", tarfile.SYMTYPE, link=".."),
        entry("dir/", tarfile.DIRTYPE, mode=0o777),
    ])
    hardlinks = layer([
        entry("h1", tarfile.LNKTYPE, link="../sentinel"),
        entry("h2", tarfile.LNKTYPE, link="../../parent/outside/bait"),
        entry("s", tarfile.SYMTYPE, link="../sentinel"),
        entry("h3", tarfile.LNKTYPE, link="s"),
        entry("h3", data=b"write through a linked symlink?\n"),
        entry("d/", tarfile.DIRTYPE),
        entry("h4", tarfile.LNKTYPE, link="d"),
    ])
    whiteouts = layer([
        entry("a/", tarfile.DIRTYPE, mode=0o755),
        entry("a/.wh..wh..opq"),
        entry("a/kept", data=b"added by this layer\n"),
        entry(".wh.gone"),
        entry(".wh.a"),
        entry("b/.wh.x"),
        entry(".wh..wh.plnk"),
        entry(".wh.."),
        entry(".wh..."),
        entry("l", tarfile.SYMTYPE, link="../outside"),
        entry("l/.wh.bait"),
        entry("l/.wh..wh..opq"),
    ])
    long_name = "d/" + "n" * 150 + "/" + "x" * 120
    pax = layer([
        entry(long_name, data=b"long\n"),
        entry("x", data=b"xattrs\n", pax={
            "SCHILY.xattr.user.note": "hi",
            "SCHILY.xattr.trusted.overlay.opaque": "y",
            "SCHILY.xattr.security.capability": "\x01\x00\x00\x02",
        }),
        entry("setuid", data=b"#!/bin/sh\n", mode=0o4755),
        entry("t", data=b"", pax={"mtime": "1700000000.123456789", "uid": "100000"}),
    ], fmt=tarfile.PAX_FORMAT)
    gnu_long = layer([entry("g/" + "y" * 200, data=b"gnu long\n"),
                      entry("g/s", tarfile.SYMTYPE, link="z" * 150)])
    nodes = layer([
        entry("dev/", tarfile.DIRTYPE, mode=0o755),
        entry("dev/null", tarfile.CHRTYPE, mode=0o666),
        entry("dev/loop", tarfile.BLKTYPE, mode=0o660),
        entry("dev/fifo", tarfile.FIFOTYPE, mode=0o600),
        entry("dev/null", data=b"replaced\n"),
    ])
    yield "basic", PLAIN, basic
    yield "basic-gzip", GZIP, basic
    yield "climbing", PLAIN, climbing
    yield "symlinks", REMOVE, symlinks
    yield "hardlinks", PLAIN, hardlinks
    yield "whiteouts-overlay", PLAIN, whiteouts
    yield "whiteouts-remove", REMOVE | GZIP, whiteouts
    yield "pax", PLAIN, pax
    yield "gnu-long", PLAIN, gnu_long
    yield "nodes", PLAIN, nodes
    yield "pre-gzipped", PLAIN, gzip.compress(basic, mtime=0)
    yield "truncated", PLAIN, basic[:700]
    if shutil.which("zstd"):
        zstd = subprocess.run(["zstd", "-q", "-c"], input=symlinks, check=True,
                              capture_output=True).stdout
        yield "pre-zstd", REMOVE, zstd


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, selector, data in seeds():
        (OUT / name).write_bytes(bytes([selector]) + data)


if __name__ == "__main__":
    main()
