"""The report script of docs/results-cpu.md reads the committed pilot files and prints the report's tables."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PILOT = os.path.join(ROOT, "docs", "results", "paper-bf16-pilot")


def test_report_tables_match_the_recorded_pilot(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "campaign_report.py"), "--results", PILOT,
                          "--figures", str(tmp_path)], capture_output=True, text=True, check=True).stdout
    assert "| SST-2 | 1e-4 | 4 | 89.11 (702) | 87.50 | yes |" in out
    assert "| MRPC | 5e-5 | 5 | 84.59 (406) | 83.59 | yes |" in out
    assert "dev accuracy 0.0% -> 25.29%" in out
    assert "| 2e-4 | 1 | glr/SST-2-2e-4 | 84.29 | 83.83 | 84.06 | 82.68 | 99.9% | 61 |" in out
    assert "| glr/SST-2-2e-4 | mate-kd | 2 | 1970 | 0.4272 | 0.3796 | 1.125 | 99.9% | 80.1% | 0.0599 |" in out
    assert sorted(os.listdir(tmp_path)) == ["paper_generator.png", "paper_runs_SST-2.png"]
    assert all(os.path.getsize(tmp_path / name) > 10_000 for name in os.listdir(tmp_path))
