"""The policies: one module per concern of spec section 2 and 3, each the concern's only home.

Where is a rule enforced? In its plugin: spread in :mod:`policies.spread`, co-location in
:mod:`policies.colocation`, the replica shape (counts, Duplicated, Aggregated, ``clusterAffinities``
tiers for copies, ``weightPreference``) in :mod:`policies.replicas`, capacity in
:mod:`policies.capacity`, tenancy and quota in :mod:`policies.tenancy`, taints in
:mod:`policies.taints`, and so on. Each plugin carries every face of its concern
(:class:`policies.base.Plugin`): its eligibility filter, its CP-SAT constraints and objective terms,
its construction-time admission (what the heuristics ask: "may these replicas go there?"), its
cuts for the cost LP, and its explanation. The solvers never re-implement a concern: they ask
every plugin through :mod:`policies.registry`, one call per face. Only ``engine.verification``
checks the rules again, on its own and from the spec's text, on purpose.

Adding a concern (say, ``maxUnavailable`` per region):

1. write ``policies/<concern>.py`` with one ``Plugin`` subclass, a unique ``name`` (and a
   ``reason`` code if it filters), overriding only the faces the concern has: ``filter`` and
   ``explain`` for eligibility, ``prepare`` to put its arrays on the problem, ``constrain`` /
   ``score`` for the exact model, ``room`` / ``admit_pairs`` / ``order`` / ``propose`` / ``admit``
   for construction (repair, pinned and the service's fast path use the same rule), ``rigid`` /
   ``fixed_layout`` / ``fewest_clusters`` for the cost LP, ``why_*`` for explanations;
2. add one line to ``PLUGINS`` in :mod:`policies.registry` (filter order names the reason);
3. add its cases to ``CASES`` in ``tests/test_policies.py``: each runs through every strategy
   (exact, large, pinned, the service's fast path), so the concern cannot be right in one and
   wrong in another; and teach ``engine.verification`` the rule from the spec text.
"""
