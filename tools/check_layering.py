#!/usr/bin/python3
"""Checks that no library includes from a library above it (docs/architecture.md, "Layers").

Every C++ file under common/, edge/, ingress/, origin/ and perf/ is read; each
`#include "..."` of a project path must be allowed by the table below, and the
lowest layers must not include the runtime's system headers (liburing, TLS).
The pure libraries' meson.build files may name only the dependencies listed
below (common/codec: common_base_dep), so what they link is proven too.
Prints one line per violation naming the file, the include or dependency and
the rule, and exits 1 if there is any.

usage: tools/check_layering.py [--root DIR]   (default: the repository root)
       tools/check_layering.py --self-test    (proves the check fails on violations)
"""

import argparse
import os
import re
import sys
import tempfile

# The libraries of common/ and the libraries each may include directly. What a
# library may include is the closure: http may include runtime through tls.
# Keep in step with docs/architecture.md ("Layers") and each folder's
# meson.build dependencies.
COMMON_LAYERS = {
    'base': [],
    'codec': ['base'],
    'net': ['base', 'codec'],
    'runtime': ['base'],
    'tls': ['base', 'runtime'],
    'config': ['base', 'net'],
    'process': ['base', 'runtime', 'config'],
    'valkey': ['base', 'codec', 'runtime', 'net'],
    'http': ['base', 'codec', 'runtime', 'net', 'tls'],
}

# What a library's unit tests (tests/) and fuzz targets (fuzz/) may use beyond
# the library itself: the reactor's tests open sockets with net's listen_socket.
COMMON_TEST_EXTRAS = {
    'runtime': ['net'],
}

# The programs and the benchmarks sit on top of common/: each may include any
# library of common/, its own folder and the folders listed here.
MODULES = {
    'edge': [],
    'ingress': [],
    'origin': [],
    'perf': ['edge', 'ingress', 'origin'],
}

# Libraries inside a program's folder that the rest of the folder must not
# include: (folder, the files of the library and of what wires it, the
# includes only they may use). The edge's cluster sync over Valkey
# (mf_edge_cluster in edge/meson.build) is known to the edge's core only
# through edge/cluster_sync.h; main.cc links it in (docs/architecture.md,
# "The edge's roles").
INNER_LIBRARIES = [
    ('edge', ('edge/cluster_sync_valkey', 'edge/tests/cluster_sync_valkey', 'edge/main.cc'),
     ('common/valkey/', 'edge/cluster_sync_valkey')),
]

# System headers that a layer must not include: the codecs and everything
# below the runtime are pure (no io_uring, no TLS, no library from outside).
FORBIDDEN_SYSTEM_HEADERS = {
    'base': ['liburing', 'openssl/'],
    'codec': ['liburing', 'openssl/', 'hiredis/'],
    'net': ['liburing', 'openssl/'],
    'config': ['liburing', 'openssl/'],
}

# The dependencies (meson names ending in _dep) that a pure library's
# meson.build may name at all: the codecs link common/base and nothing else
# (no liburing, OpenSSL or hiredis); their own common_codec_dep and gtest
# serve the unit tests, replay and fuzz executables beside them. A
# dependency() or find_library() call there is refused as well.
MESON_DEPENDENCIES = {
    'codec': ['common_base_dep', 'common_codec_dep', 'gtest_dep', 'gmock_dep'],
}

SOURCE_SUFFIXES = ('.h', '.hh', '.hpp', '.cc', '.cpp')
MESON_DEP_NAME = re.compile(r'\b([A-Za-z_][A-Za-z0-9_]*_dep)\b')
MESON_EXTERNAL = re.compile(r'\b(dependency|find_library)\s*\(')
QUOTED_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
SYSTEM_INCLUDE = re.compile(r'^\s*#\s*include\s*<([^>]+)>')
DOC = 'docs/architecture.md, "Layers"'


def closure(layers, name):
    """The libraries `name` may include: itself and everything below it."""
    seen = {name}
    todo = list(layers[name])
    while todo:
        lib = todo.pop()
        if lib not in seen:
            seen.add(lib)
            todo.extend(layers[lib])
    return seen


def describe(libs):
    return ', '.join('common/' + lib for lib in sorted(libs))


def check_file(relpath, lines):
    """The violations of one file (relpath from the root, '/'-separated)."""
    parts = relpath.split('/')
    problems = []
    top = parts[0]
    if top == 'common':
        if len(parts) < 3 or parts[1] not in COMMON_LAYERS:
            return [f'{relpath}: is not in a library of common/ (common/<library>/...; {DOC})']
        lib = parts[1]
        allowed = closure(COMMON_LAYERS, lib)
        rule = f'common/{lib} may include only {describe(allowed)}'
        if len(parts) > 3 and parts[2] in ('tests', 'fuzz'):
            for extra in COMMON_TEST_EXTRAS.get(lib, []):
                allowed |= closure(COMMON_LAYERS, extra)
            rule = f'common/{lib}/{parts[2]} may include only {describe(allowed)}'
        forbidden = FORBIDDEN_SYSTEM_HEADERS.get(lib, [])
    else:
        allowed = None
        own = {top} | set(MODULES[top])
        rule = (f'{top}/ may include common/ and ' + ', '.join(f'{m}/' for m in sorted(own)))
        forbidden = []

    for number, line in enumerate(lines, 1):
        match = QUOTED_INCLUDE.match(line)
        if match:
            target = match.group(1)
            head = target.split('/')
            if head[0] == 'common':
                if len(head) < 3 or head[1] not in COMMON_LAYERS:
                    problems.append(f'{relpath}:{number}: includes "{target}": not a library of common/ ({DOC})')
                elif allowed is not None and head[1] not in allowed:
                    problems.append(f'{relpath}:{number}: includes "{target}": {rule} ({DOC})')
            elif head[0] in MODULES:
                if allowed is not None or head[0] not in own:
                    problems.append(f'{relpath}:{number}: includes "{target}": {rule} ({DOC})')
            for folder, members, guarded in INNER_LIBRARIES:
                if top == folder and not relpath.startswith(members) and target.startswith(guarded):
                    problems.append(f'{relpath}:{number}: includes "{target}": in {folder}/ only '
                                    f'{", ".join(members)} may include {", ".join(guarded)} '
                                    f'(docs/architecture.md, "The edge\'s roles")')
            continue
        match = SYSTEM_INCLUDE.match(line)
        if match:
            target = match.group(1)
            for prefix in forbidden:
                if target.startswith(prefix):
                    problems.append(f'{relpath}:{number}: includes <{target}>: common/{lib} must not use '
                                    f'<{prefix}...> (pure layer; {DOC})')
    return problems


def check_meson(relpath, lines, lib):
    """The dependencies that common/<lib>/meson.build names beyond its list."""
    allowed = MESON_DEPENDENCIES[lib]
    rule = f'common/{lib} may depend on {", ".join(allowed)} only'
    problems = []
    for number, line in enumerate(lines, 1):
        code = line.split('#', 1)[0]
        for name in MESON_DEP_NAME.findall(code):
            if name not in allowed:
                problems.append(f'{relpath}:{number}: declares {name}: {rule} ({DOC})')
        for call in MESON_EXTERNAL.findall(code):
            problems.append(f'{relpath}:{number}: calls {call}(): {rule} ({DOC})')
    return problems


def check_tree(root):
    problems = []
    for lib in sorted(MESON_DEPENDENCIES):
        path = os.path.join(root, 'common', lib, 'meson.build')
        if os.path.exists(path):
            with open(path, encoding='utf-8', errors='replace') as build:
                problems.extend(check_meson(f'common/{lib}/meson.build', lib=lib,
                                            lines=build.read().splitlines()))
    for top in ['common'] + sorted(MODULES):
        base = os.path.join(root, top)
        for directory, dirs, files in os.walk(base):
            dirs.sort()
            for name in sorted(files):
                if not name.endswith(SOURCE_SUFFIXES):
                    continue
                path = os.path.join(directory, name)
                relpath = os.path.relpath(path, root).replace(os.sep, '/')
                with open(path, encoding='utf-8', errors='replace') as source:
                    problems.extend(check_file(relpath, source.read().splitlines()))
    return problems


def self_test():
    """A fake tree with one allowed include of each kind and one violation of
    each rule: the check must accept the first and report every one of the
    second, naming file, include and rule."""
    allowed = {
        'common/base/log.h': '#include <string>\n',
        'common/codec/frame.h': '#include "common/base/log.h"\n#include <cstdint>\n',
        'common/runtime/reactor.h': '#include "common/base/log.h"\n#include <liburing.h>\n',
        'common/runtime/tests/reactor_test.cc': '#include "common/net/listen_socket.h"\n',
        'common/http/server.cc': '#include "common/runtime/reactor.h"\n#include "common/codec/frame.h"\n',
        'edge/shard.cc': '#include "common/http/server.h"\n#include "edge/shard.h"\n',
        'edge/cluster_sync_valkey.cc': '#include "common/valkey/client.h"\n#include "edge/cluster_sync.h"\n',
        'perf/bench.cc': '#include "edge/shard.h"\n#include "common/codec/frame.h"\n',
        'common/codec/meson.build': ("# crypto_dep in a comment is no dependency\n"
                                     "lib = static_library('c', 'frame.cc', dependencies: [common_base_dep])\n"
                                     "common_codec_dep = declare_dependency(link_with: lib)\n"
                                     "executable('t', dependencies: [common_codec_dep, gtest_dep, gmock_dep])\n"),
    }
    violations = {
        'common/codec/bad_runtime.cc': ('#include "common/runtime/reactor.h"\n',
                                        'includes "common/runtime/reactor.h": common/codec may include only'),
        'common/base/bad_edge.h': ('#include "edge/shard.h"\n', 'includes "edge/shard.h": common/base may include only'),
        'common/tls/bad_http.cc': ('#include "common/http/server.h"\n',
                                   'includes "common/http/server.h": common/tls may include only'),
        'common/codec/bad_uring.cc': ('#include <liburing.h>\n', 'includes <liburing.h>: common/codec must not use'),
        'common/codec/bad_ssl.cc': ('#include <openssl/ssl.h>\n', 'includes <openssl/ssl.h>: common/codec must not'),
        'common/codec/bad_sha.cc': ('#include <openssl/sha.h>\n', 'includes <openssl/sha.h>: common/codec must not'),
        'common/codec/bad_resp.cc': ('#include <hiredis/read.h>\n', 'includes <hiredis/read.h>: common/codec must not'),
        'common/codec/meson.build': ("lib = static_library('c', dependencies: [common_base_dep, hiredis_dep])\n",
                                     'common/codec/meson.build:1: declares hiredis_dep: common/codec may depend on'),
        'common/net/tests/bad_test.cc': ('#include "common/runtime/reactor.h"\n',
                                         'common/net/tests may include only'),
        'common/flat.h': ('\n', 'common/flat.h: is not in a library of common/'),
        'common/base/bad_flat.cc': ('#include "common/event_loop.h"\n',
                                    'includes "common/event_loop.h": not a library of common/'),
        'edge/bad_ingress.cc': ('#include "ingress/tunnel.h"\n', 'includes "ingress/tunnel.h": edge/ may include'),
        'edge/bad_valkey.cc': ('#include "common/valkey/client.h"\n',
                               'includes "common/valkey/client.h": in edge/ only edge/cluster_sync_valkey'),
    }
    failures = []
    with tempfile.TemporaryDirectory(prefix='mf-layering-') as root:
        def write(tree):
            for relpath, text in tree.items():
                path = os.path.join(root, relpath)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, 'w', encoding='utf-8') as out:
                    out.write(text)
        write(allowed)
        clean = check_tree(root)
        if clean:
            failures.append('an allowed tree was refused: ' + '; '.join(clean))
        write({relpath: text for relpath, (text, _) in violations.items()})
        found = check_tree(root)
        for relpath, (_, expected) in violations.items():
            if not any(line.startswith(relpath) and expected in line for line in found):
                failures.append(f'no report for {relpath} (expected "{expected}"); reported: {found}')
        if len(found) != len(violations):
            failures.append(f'{len(found)} reports for {len(violations)} violations: {found}')
    for failure in failures:
        print(f'check_layering self-test: {failure}', file=sys.stderr)
    if not failures:
        print(f'check_layering self-test: {len(violations)} violations reported, allowed tree accepted')
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument('--self-test', action='store_true')
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    problems = check_tree(args.root)
    for problem in problems:
        print(f'layering: {problem}', file=sys.stderr)
    if problems:
        print(f'layering: {len(problems)} includes or dependencies break the layers ({DOC})', file=sys.stderr)
        return 1
    print('layering: every include, and every dependency of a pure library, follows the layers')
    return 0


if __name__ == '__main__':
    sys.exit(main())
