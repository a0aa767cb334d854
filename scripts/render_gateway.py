#!/usr/bin/env python3
"""Render a gateway template natively, as the nginx image's envsubst step does in compose.

Only ${NAME} for names given in the environment are replaced, so NGINX's own
$variables stay. Usage: render_gateway.py TEMPLATE OUTPUT
"""

from __future__ import annotations

import os
import re
import sys


def render(text: str, env: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)\}", substitute, text)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: render_gateway.py TEMPLATE OUTPUT\n")
        return 2
    with open(argv[0], encoding="utf-8") as source:
        rendered = render(source.read(), dict(os.environ))
    missing = sorted(set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", rendered)))
    if missing:
        sys.stderr.write(f"unset template variables: {', '.join(missing)}\n")
        return 1
    with open(argv[1], "w", encoding="utf-8") as target:
        target.write(rendered)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
