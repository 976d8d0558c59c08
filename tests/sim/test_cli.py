"""`python -m v6core.sim` starts standalone, prints its address and serves the real client."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.sim.conftest import connect, run

REPO = Path(__file__).resolve().parents[2]


def test_cli_prints_address_and_serves(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "v6core.sim", "--host", "127.0.0.1", "--port", "0", "--seed", "3"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, line
        port = int(match.group(1))
        assert port > 0

        async def go():
            ib = await connect(port)
            try:
                return ib.wrapper.accounts, len(ib.positions())
            finally:
                ib.disconnect()

        accounts, n_positions = run(go)
        assert accounts[0].startswith("DU") and accounts[0] in line and n_positions > 5
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def _start(*extra: str) -> tuple[subprocess.Popen, int, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "v6core.sim", "--host", "127.0.0.1", "--port", "0", "--seed", "3", *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    line = proc.stdout.readline()
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    assert match, line
    return proc, int(match.group(1)), line


def test_cli_state_file_keeps_the_account_and_fresh_needs_it(tmp_path):
    from ib_async import MarketOrder, Stock

    from tests.sim.conftest import until

    state = tmp_path / "paper.json"
    proc, port, line = _start("--state", str(state))
    try:
        assert "restored" not in line

        async def trade():
            ib = await connect(port)
            try:
                trade = ib.placeOrder(Stock(conId=756733, exchange="SMART"), MarketOrder("BUY", 3))
                await until(lambda: trade.orderStatus.status == "Filled", what="fill")
            finally:
                ib.disconnect()

        run(trade)
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert state.exists()
    proc, port, line = _start("--state", str(state))
    try:
        assert f"restored from {state}" in line
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    bad = subprocess.run([sys.executable, "-m", "v6core.sim", "--fresh"], cwd=REPO,
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "--fresh only makes sense with --state" in bad.stderr
