from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import make_sys_tree
from tuner.errors import HostError
from tuner.host import (
    Fingerprint,
    fingerprint,
    format_cpu_list,
    onednn_version,
    parse_cpu_list,
    probe_host,
    probe_topology,
    tensorflow_version,
)


@pytest.mark.parametrize("text,ids", [("0", [0]), ("0-3", [0, 1, 2, 3]),
                                      ("0-1,4,6-7", [0, 1, 4, 6, 7]), ("", [])])
def test_cpu_list_round_trip(text: str, ids: list[int]) -> None:
    assert parse_cpu_list(text) == ids
    assert format_cpu_list(ids) == text


def test_two_socket_xeon_topology(xeon_root: Path) -> None:
    topo = probe_topology(xeon_root)
    assert topo.sockets == [0, 1]
    assert topo.nodes == [0, 1]
    assert topo.physical_cores == 56
    assert topo.logical_cpus == 112
    assert topo.threads_per_core == 2
    assert topo.model == "Intel(R) Xeon(R) Platinum 8180"
    assert "avx512_bf16" in topo.flags
    # the first N physical cores: socket 0 first, one hardware thread each
    assert topo.first_physical_cores(4) == [0, 1, 2, 3]
    assert topo.first_physical_cores(2, with_siblings=True) == [0, 1, 56, 57]
    assert topo.first_physical_cores(30) == list(range(30))  # spills onto socket 1
    assert topo.cpus_of_node(1) == list(range(28, 56)) + list(range(84, 112))
    assert topo.cores_of_socket(0) == 28
    assert topo.nodes_of_socket(1) == [1]
    with pytest.raises(HostError, match="56"):
        topo.first_physical_cores(57)


def test_sub_numa_clustering(tmp_path: Path) -> None:
    root = make_sys_tree(tmp_path / "snc", sockets=2, cores_per_socket=4, threads_per_core=1,
                         nodes_per_socket=2)
    topo = probe_topology(root)
    assert topo.nodes == [0, 1, 2, 3]
    assert topo.nodes_of_socket(0) == [0, 1]
    assert topo.cpus_of_node(3) == [6, 7]


def test_affinity_mask_limits_usable_cores(xeon_root: Path) -> None:
    topo = probe_topology(xeon_root, allowed=range(0, 8))
    assert topo.physical_cores == 8
    assert topo.logical_cpus == 8
    assert topo.first_physical_cores(8) == list(range(8))


def test_missing_sysfs_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HostError, match="online CPUs"):
        probe_topology(tmp_path)


def test_real_host_probe_matches_the_kernel() -> None:
    host = probe_host()
    assert host.topology.logical_cpus == len(os.sched_getaffinity(0))
    assert host.topology.physical_cores >= 1
    assert host.topology.model != "unknown"


def test_fingerprint_records_versions_and_host_class(tmp_path: Path) -> None:
    fp = fingerprint(probe_host(), cache_dir=Path.home() / ".cache" / "tuner")
    data = fp.to_dict()
    for key in ("cpu_model", "kernel", "python", "tensorflow", "onednn", "numactl",
                "host_class"):
        assert data[key], key
    assert fp.tensorflow[0].isdigit()
    assert fp.onednn[0].isdigit(), "oneDNN version probe should find TensorFlow's oneDNN"


def test_host_class_ignores_kernel_but_not_cores() -> None:
    base = dict(cpu_model="X", sockets=2, physical_cores=56, logical_cpus=112, numa_nodes=2,
                threads_per_core=2, kernel="6.1", python="3.11.7", tensorflow="2.21.0",
                onednn="3.7.3", numactl="2.0.16")
    a = Fingerprint(**base)
    assert Fingerprint(**{**base, "kernel": "6.8"}).host_class == a.host_class
    assert Fingerprint(**{**base, "physical_cores": 28}).host_class != a.host_class
    assert Fingerprint(**{**base, "tensorflow": "2.20.0"}).host_class != a.host_class


def test_a_failed_onednn_probe_is_not_cached(tmp_path: Path) -> None:
    """A probe that fails (here: an interpreter that exits 1) answers "unknown" and leaves
    no cache behind, so a worker never keeps a host class made of a failed probe; a
    working probe's answer is cached whole."""
    if tensorflow_version() == "not installed":
        pytest.skip("TensorFlow is not installed")
    assert onednn_version(tmp_path, python="/bin/false") == "unknown"
    assert list(tmp_path.iterdir()) == []
    cache = tmp_path / f"onednn-{tensorflow_version()}.json"
    cache.write_text('{"onednn": "9.9"}')
    assert onednn_version(tmp_path, python="/bin/false") == "9.9"  # read, not probed
