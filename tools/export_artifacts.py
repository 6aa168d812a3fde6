"""Copy the compiled contracts the client uses (the ledger and Anchors) from brownie's
build/ into ledger/artifacts/.

Usage: python tools/export_artifacts.py [--check]
With --check, exit 1 when the committed copy differs from the fresh build.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger.artifacts import ARTIFACT_DIR, EXPORTED_CONTRACTS, artifact_from_build, artifact_to_json  # noqa: E402


def main(argv: list[str]) -> int:
    stale = 0
    for name in EXPORTED_CONTRACTS:
        build = ROOT / "build" / "contracts" / f"{name}.json"
        fresh = artifact_to_json(artifact_from_build(json.loads(build.read_text())))
        target = ARTIFACT_DIR / f"{name}.json"
        if "--check" in argv:
            if not target.exists() or target.read_text() != fresh:
                print(f"{target} differs from a fresh compile: run `make artifacts` and commit it", file=sys.stderr)
                stale += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(fresh)
        print(f"wrote {target.relative_to(ROOT)}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
