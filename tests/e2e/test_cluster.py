"""cluster.yaml and cluster-onprem.yaml: Ray's own validation, as `ray up` does it (prepare, then validate)."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from helpers import REPO

CONFIGS = ["cluster.yaml", "cluster-onprem.yaml"]


def load(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text())


def ray_validate(config: dict) -> dict:
    """What `ray up` does before touching any machine: fill in the provider's defaults, then check the
    schema and the node types."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


@pytest.mark.parametrize("name", CONFIGS)
def test_config_passes_rays_validation(name):
    prepared = ray_validate(load(name))
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_cloud_config_has_a_cpu_head_and_gpu_workers_from_zero():
    config = ray_validate(load("cluster.yaml"))
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"] == {"CPU": 0}, "the head must not run trials"
    assert "--num-cpus=0" in " ".join(config["head_start_ray_commands"])
    workers = [t for name, t in config["available_node_types"].items() if name != config["head_node_type"]]
    assert workers and all(t["min_workers"] == 0 for t in workers)
    assert any(t["node_config"]["InstanceType"].startswith(("g", "p")) for t in workers), (
        "a GPU instance type"
    )
    assert config["idle_timeout_minutes"] <= 10


def test_onprem_config_lists_fixed_machines():
    config = ray_validate(load("cluster-onprem.yaml"))
    assert config["provider"]["type"] == "local"
    (node_type,) = config["available_node_types"].values()
    assert node_type["min_workers"] == node_type["max_workers"] == len(config["provider"]["worker_ips"])


@pytest.mark.parametrize(
    "name,breakage,message",
    [
        (
            "cluster.yaml",
            lambda c: c["available_node_types"]["gpu_worker"].update(max_workrs=3),
            "max_workrs",
        ),
        ("cluster.yaml", lambda c: c.update(head_node_type="gpu_head"), "head_node_type"),
        ("cluster.yaml", lambda c: c.update(idle_timeout_minute=5), "idle_timeout_minute"),
        ("cluster.yaml", lambda c: c["provider"].pop("type"), "type"),
        ("cluster-onprem.yaml", lambda c: c["provider"].pop("head_ip"), "head_ip"),
        ("cluster-onprem.yaml", lambda c: c.update(setup_commands="bash scripts/bootstrap.sh"), None),
    ],
)
def test_a_broken_copy_fails_validation(name, breakage, message):
    config = load(name)
    breakage(config)
    import click
    import jsonschema

    # What Ray raises for a broken config: jsonschema's error, ValueError, click's exception, a missing key;
    # for setup_commands given as a string, Ray's own TypeError (the case without a message). A bug in this
    # test (a NameError, an AttributeError) is none of them and fails it.
    named = (jsonschema.ValidationError, ValueError, KeyError, click.ClickException)
    with pytest.raises(named if message is not None else TypeError) as raised:
        ray_validate(config)
    if message is not None:  # None: Ray fails on it, with an error that does not name the key
        assert message in str(raised.value), raised.value


@pytest.mark.parametrize("name", CONFIGS)
def test_every_key_is_commented(name):
    """Each mapping key has a comment on the line above (or after it on the same line)."""
    lines = (REPO / name).read_text().splitlines()
    uncommented = []
    for number, line in enumerate(lines):
        if not re.match(r"^\s*[A-Za-z_~][\w.~/-]*:", line) or "#" in line:
            continue
        previous = next((p for p in reversed(lines[:number]) if p.strip()), "")
        if not previous.strip().startswith("#"):
            uncommented.append(f"{number + 1}: {line.strip()}")
    assert not uncommented, uncommented


@pytest.mark.parametrize("name", CONFIGS)
def test_setup_installs_the_project_and_ships_no_data(name):
    config = load(name)
    setup = " ".join(config["setup_commands"])
    assert "bash scripts/bootstrap.sh" in setup and (REPO / "scripts" / "bootstrap.sh").is_file()
    for command in config["head_start_ray_commands"] + config["worker_start_ray_commands"]:
        assert "ray stop" in command or ".venv/bin/ray start" in command, command
    excluded = set(config["rsync_exclude"])
    assert {".venv", "results", "data", "*.parquet", "*.csv", "*.nii.gz"} <= excluded
    assert list(config["file_mounts"].values()) == ["."]
