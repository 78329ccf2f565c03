"""What parsing a DAG file loads: run in a fresh interpreter, as the scheduler's parser would."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT_ROOT


def modules_loaded_by_parsing(dag_file: Path, modules: tuple[str, ...]) -> list[str]:
    """Those of `modules` that are imported once `dag_file` has been parsed (this environment,
    the project's plugins on the path)."""
    code = (
        "import runpy, sys, json; "
        f"runpy.run_path({str(dag_file)!r}); "
        f"print(json.dumps([m for m in {modules!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "plugins")},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
