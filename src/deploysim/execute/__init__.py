"""Executors: where the turns of replay and grading run.

The default executor is local: one asyncio process (:func:`deploysim.replay.run_replay` and
:func:`deploysim.grading.run_grading`). :mod:`deploysim.execute.ray_executor` runs the same
stage functions (``run_turn``, ``Grader.grade``) on a Ray cluster, with the same stored results;
it needs the optional extra ``deploysim[ray]``. Importing this package imports no Ray:

- :mod:`~deploysim.execute.work`: the work items and their keys, shared by every executor that
  runs turns away from the store (plain Python: SQL, JSON);
- :mod:`~deploysim.execute.ray_stages`: what runs on the cluster (datasources, actor classes);
- :mod:`~deploysim.execute.ray_executor`: the driver (``run_replay_ray``, ``run_grading_ray``).
"""
