"""Every server process, worker and CLI that serves pages imports ``api.app``: the libraries
only a few routes need (scikit-learn and scipy for the intelligence room, pypinyin for Chinese
search keys) load at their first use, not with the app. Importing them with the app cost
every process ~2 s of CPU (~28 % of the import) on this 2-core machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAZY = ("sklearn", "scipy.stats", "scipy.sparse", "scipy.ndimage", "pypinyin")


def test_the_app_imports_without_the_libraries_of_a_few_routes() -> None:
    probe = ("import json, sys\nimport api.app\n"
             f"print(json.dumps([m for m in {LAZY!r} if m in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_lazy_libraries_load_when_a_model_is_fitted() -> None:
    probe = ("import json, sys\n"
             "from gridcore.intelligence.classify import TextClassifier\n"
             "from gridcore.intelligence.features import Report\n"
             "m = TextClassifier(language='en').fit("
             "[Report('lamp out', 'the street lamp is dark'), Report('pothole', 'a hole')] * 3,"
             " ['light', 'road'] * 3)\n"
             "print(json.dumps([m.suggest(Report('lamp', 'dark lamp'), k=1)[0].category,"
             " 'sklearn' in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["light", True]
