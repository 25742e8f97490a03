from pathlib import Path

from bids_fcd import resources


def test_cgroup_quota_caps_the_cpus(tmp_path: Path, monkeypatch):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert resources.cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert resources.cgroup_cpu_limit(tmp_path) is None
    monkeypatch.setattr(resources, "cgroup_cpu_limit", lambda root=None: 1.5)
    assert resources.available_cpus() == min(2, resources.available_cpus())  # rounded up, never above affinity
    monkeypatch.setattr(resources, "cgroup_cpu_limit", lambda root=None: 0.2)
    assert resources.available_cpus() == 1


def test_cgroup_v1_and_missing(tmp_path: Path):
    assert resources.cgroup_cpu_limit(tmp_path) is None
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert resources.cgroup_cpu_limit(tmp_path) == 3.0


def test_thread_resolution(monkeypatch):
    monkeypatch.setattr(resources, "available_cpus", lambda: 8)
    assert resources.resolve_threads(0, 0) == 8
    assert resources.resolve_threads(4, 0) == 4
    assert resources.resolve_threads(4, 2) == 2
    assert resources.resolve_threads(2, 6) == 2, "per-process threads never exceed --nprocs"
    assert resources.resolve_threads(0, 3) == 3
