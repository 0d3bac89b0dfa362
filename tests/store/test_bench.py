import json

from adapter.store import bench


def test_bench_reports_every_figure_for_each_backend(capsys, monkeypatch):
    monkeypatch.delenv("MONGODB_URI", raising=False)
    assert bench.main(["--entries", "300", "--mock-entries", "50", "--lookups", "5", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert set(results) == {"sqlite", "mongomock"}
    for figures in results.values():
        assert set(figures) == {"audit_call_us", "flush_entries_per_s", "get_charger_us"}
        assert all(v > 0 for v in figures.values())
