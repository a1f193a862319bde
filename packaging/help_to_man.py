#!/usr/bin/python3
"""Writes a man page (roff, section 1) from a program's --help text.

usage: help_to_man.py PROGRAM "ONE-LINE DESCRIPTION" VERSION < help.txt > PROGRAM.1

The --help text is the reference (it is generated from the same table as the
option parser); the page shows it verbatim under OPTIONS and points to the
example configuration and the documentation installed with the package."""

import sys


def roff_line(text):
    """One line of text, safe for roff: backslashes escaped, hyphens as
    minus signs (options), and a leading dot or quote neutralised."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    program, description, version = sys.argv[1:]
    help_lines = sys.stdin.read().rstrip("\n").split("\n")
    if not help_lines or not help_lines[0].startswith("usage: "):
        sys.exit(f"help_to_man: {program} --help does not start with 'usage: '")
    synopsis = help_lines[0][len("usage: "):]
    out = [
        f'.TH {program.upper()} 1 "" "meshedflow {version}" "MeshedFlow"',
        ".SH NAME",
        f"{roff_line(program)} \\- {roff_line(description)}",
        ".SH SYNOPSIS",
        ".nf",
        roff_line(synopsis),
        ".fi",
        ".SH OPTIONS",
        "The output of",
        f".B {roff_line(program)} \\-\\-help\\fR:",
        ".PP",
        ".nf",
    ]
    out += [roff_line(line) for line in help_lines[1:]]
    out += [
        ".fi",
        ".SH FILES",
        ".TP",
        ".I /etc/meshedflow/",
        "Example configurations, every setting with its default.",
        ".TP",
        ".I /usr/share/doc/meshedflow/",
        "The documentation (deploy.md walks through a deployment).",
    ]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
