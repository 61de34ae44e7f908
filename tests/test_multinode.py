"""A study on a real multi-node Ray cluster (ray.cluster_utils.Cluster: head + 2 worker nodes)."""

from __future__ import annotations

import json

import pytest
from conftest import make_table


@pytest.mark.slow
def test_trials_spread_over_several_nodes(tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    from mmt_tune.data.table import write_feature_table
    from mmt_tune.run import run_study

    features = tmp_path / "features.parquet"
    write_feature_table(make_table(200, signal={"DWI": 1.0}), features, {})
    was_running = ray.is_initialized()
    ray.shutdown()  # this test needs its own cluster, not the session's single node
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)
        assert len([n for n in ray.nodes() if n["Alive"]]) == 3
        result = run_study(
            "mmt1m",
            features,
            samples=2,
            epochs=3,
            folds=2,
            storage=tmp_path / "results",
            name="multinode",
            wandb="off",
        )
        assert result.trials["trial_id"].nunique() == 6 and set(result.trials["status"]) == {"ok"}
        nodes = set()
        for trial_dir in result.experiment.glob("run_trial_*"):
            last = json.loads((trial_dir / "result.json").read_text().splitlines()[-1])
            nodes.add(last["node_id"])
        assert len(nodes) >= 2, f"all trials ran on one node: {nodes}"
    finally:
        ray.shutdown()
        cluster.shutdown()
        if was_running:  # hand the session fixture its local instance back
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
