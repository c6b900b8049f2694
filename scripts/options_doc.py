"""Write docs/options.md, the table of every environment option, from
:func:`lanesim.envs.options.option_help` (the options' own help texts, so the page cannot say
other than the code)::

    .venv/bin/python scripts/options_doc.py            # rewrite docs/options.md
    .venv/bin/python scripts/options_doc.py --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lanesim.envs.options import option_help

PAGE = Path(__file__).resolve().parents[1] / "docs" / "options.md"
HEADER = """# Environment options

Every option is a `gym.make` / `gym.make_vec` keyword and a scenario-file key; keywords override
the scenario file, which overrides the defaults (see README's *Options*). Generated from
`lanesim.envs.options.option_help()` by `python scripts/options_doc.py`; a test keeps it current.

| option | meaning, accepted values and default |
|---|---|
"""


def page() -> str:
    """The markdown of docs/options.md."""
    rows = [f"| `{name}` | {text.replace('|', chr(92) + '|')} |"
            for name, text in option_help().items()]
    return HEADER + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="only compare: exit 1 if docs/options.md differs from the options")
    args = ap.parse_args(argv)
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != page():
            print(f"{PAGE} is out of date: run python scripts/options_doc.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page())
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
