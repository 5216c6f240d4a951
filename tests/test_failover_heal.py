"""``adapters.failover.heal``: only what the trouble touches moves; the engine's ``frozen`` holds the rest."""

from __future__ import annotations

from adapters.failover import Trouble, heal
from engine import place
from tests.builders import bundle_of, cluster, workload

LOST = {"edge-a": Trouble("edge-a", "lost", "its metrics stopped")}


def _fleet():  # type: ignore[no-untyped-def]
    # pricey-c is 100x dearer than cheap-b: a re-optimisation would move api there at once
    return bundle_of(
        cluster("edge-a", capacity={"cpu": "4"}, price={"cpu": "0.01"}),
        cluster("cheap-b", capacity={"cpu": "8"}, price={"cpu": "0.01"}),
        cluster("pricey-c", capacity={"cpu": "8"}, price={"cpu": "1.00"}),
        workload("web", 2, namespace="shop"), workload("api", 2, namespace="shop"),
    )


COMMITTED = {"shop/web": {"edge-a": 2}, "shop/api": {"pricey-c": 2}}


def test_a_failover_moves_only_what_the_lost_cluster_held() -> None:
    healing = heal(_fleet(), COMMITTED, LOST, max_moves=10, time_limit=5)
    assert healing.outcome == "moved" and healing.affected == ["shop/web"]
    assert healing.after["shop/api"] == {"pricey-c": 2}  # frozen where it runs
    assert "edge-a" not in healing.after["shop/web"] and sum(healing.after["shop/web"].values()) == 2
    assert healing.changed_clusters == sorted({"edge-a", *healing.after["shop/web"]})


def test_without_frozen_the_same_solve_would_move_the_rest() -> None:
    # the control: what heal() prevents (so the test above can fail)
    from adapters.failover import lost_capacity

    plan = place(lost_capacity(_fleet(), ["edge-a"]), current=COMMITTED, max_moves=10, time_limit=5)
    assert plan.assignment()["shop/api"] != {"pricey-c": 2}


def test_a_short_cluster_keeps_what_still_fits() -> None:
    fleet = bundle_of(
        cluster("edge-a", capacity={"cpu": "2"}, price={"cpu": "0.01"}),  # shrank from 4
        cluster("cloud", capacity={"cpu": "16"}, price={"cpu": "0.10"}),
        workload("web", 4, namespace="shop"),
    )
    healing = heal(fleet, {"shop/web": {"edge-a": 4}}, {"edge-a": Trouble("edge-a", "short", "x")},
                   max_moves=10, time_limit=5)
    assert healing.outcome == "moved"
    assert healing.after == {"shop/web": {"edge-a": 2, "cloud": 2}}
    assert healing.plan is not None and healing.plan.status.objective.moves == 2


def test_nothing_on_the_cluster_is_nothing_to_do() -> None:
    assert heal(_fleet(), {"shop/api": {"pricey-c": 2}}, LOST, max_moves=10, time_limit=5).outcome == "none"


def test_a_short_cluster_in_its_grace_period_keeps_what_it_holds() -> None:
    # edge-b is short (2 cpu live, 3 committed) but not due yet; edge-a is lost and due
    fleet = bundle_of(
        cluster("edge-a", capacity={"cpu": "4"}, price={"cpu": "0.01"}),
        cluster("edge-b", capacity={"cpu": "2"}, price={"cpu": "0.01"}),
        cluster("cloud", capacity={"cpu": "16"}, price={"cpu": "0.10"}),
        workload("web", 2, namespace="shop"), workload("api", 3, namespace="shop"),
    )
    committed = {"shop/web": {"edge-a": 2}, "shop/api": {"edge-b": 3}}
    healing = heal(fleet, committed, LOST, max_moves=10, time_limit=5)
    assert healing.outcome == "moved", healing.why
    assert healing.after == {"shop/web": {"cloud": 2}, "shop/api": {"edge-b": 3}}
