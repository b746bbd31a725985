"""Without the ``demo`` extra (the production image) a chdb:// URL is one line naming the extra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
# chdb made unimportable, as in an image built from requirements/lock.txt
WITHOUT_CHDB = (
    "import sys; sys.modules['chdb'] = None; "
    "from stream.cli.main import main; sys.exit(main(sys.argv[1:]))"
)


def test_a_chdb_url_without_chdb_names_the_extra_to_install(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_CHDB, "migrate"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO), "LOYALTY_CLICKHOUSE_URL": f"chdb://{tmp_path}/ch"},
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "chdb" in lines[0] and "pip install 'loyalty[demo]'" in lines[0]
    assert "clickhouse://" in lines[0], "and says what production uses instead"
