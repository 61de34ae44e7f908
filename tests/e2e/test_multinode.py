"""Multi-node runs on one machine (ray.cluster_utils.Cluster: a head without CPUs, as in cluster.yaml, and two
worker nodes): extraction and a study spread over the nodes, results on one storage path all nodes reach,
and the analysis reads them from there."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_extraction_study_and_analysis_on_a_three_node_cluster(tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    from mmt_tune.analysis.metrics import aggregate
    from mmt_tune.analysis.report import write_report
    from mmt_tune.analysis.results import load_study
    from mmt_tune.data.synth import PhantomConfig, generate_cohort
    from mmt_tune.radiomics.extract import extract_features
    from mmt_tune.study.entry import run_study

    shared = tmp_path / "shared"  # what an NFS/EFS mount is on a real cluster: one path, every node
    manifest = generate_cohort(
        shared / "cohort", PhantomConfig(n_sclc=16, n_nsclc=24, seed=5), progress=False
    )
    was_running = ray.is_initialized()
    ray.shutdown()  # this test needs its own cluster, not the session's single node
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)
        head = ray.get_runtime_context().get_node_id()
        assert len([n for n in ray.nodes() if n["Alive"]]) == 3

        extraction = extract_features(manifest, "fast", shared / "features.parquet", progress=False)
        assert not extraction.failures and extraction.n_computed == 40 * 3
        assert len(extraction.nodes) == 2 and head not in extraction.nodes, extraction.nodes
        assert sum(extraction.nodes.values()) == 120

        result = run_study(
            "mmt1m",
            extraction.output,
            samples=2,
            epochs=3,
            folds=2,
            storage=shared / "results",
            name="multinode",
            wandb="off",
        )
        assert result.experiment == shared / "results" / "multinode"
        assert result.trials["trial_id"].nunique() == 6 and set(result.trials["status"]) == {"ok"}
        nodes = set()
        for trial_dir in result.experiment.glob("trial_*"):
            last = json.loads((trial_dir / "result.json").read_text().splitlines()[-1])
            nodes.add(last["node_id"])
        assert len(nodes) == 2 and head not in nodes, f"trials ran on {nodes}"
    finally:
        ray.shutdown()
        cluster.shutdown()
        if was_running:  # hand the session fixture its local instance back
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)

    # The analysis reads the study from the shared path (no Ray needed).
    study = load_study(shared / "results" / "multinode")
    best = aggregate(study).best
    assert len(best) == 3 and set(study.space) == {"mmt1m/T1WI", "mmt1m/FLAIR", "mmt1m/DWI"}
    means = (
        study.trials[study.trials["status"] == "ok"].groupby(["model", "present", "trial_id"])["auc"].mean()
    )
    for _, row in best.iterrows():  # Table 2's trial is each configuration's highest mean AUC
        assert row["auc_mean"] == pytest.approx(means.loc[(row["model"], row["present"])].max())
    report = write_report(study, shared / "results" / "multinode" / "report", progress=False)
    assert report.index.is_file() and (report.folder / "table2.md").is_file()
