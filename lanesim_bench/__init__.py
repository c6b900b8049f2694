"""lanesim's benchmarks and studies, apart from the simulator and its agents.

Each module is a command (``python -m lanesim_bench.NAME --help``); its report lives in
``docs/`` and says how it was made:

* ``bench_env``: environment steps per second and memory against highway-env, and the cold
  start (also ``lanesim bench``);
* ``compile_ab``: two lanesim checkouts side by side: the first step's cold compile and the
  step speeds;
* ``bench_render``: the viewer's frames per second (top-down or camera view), beside
  highway-env's renderer;
* ``bench_camera``: the camera observation's steps per second and memory, beside Gymnasium's
  CarRacing-v3;
* ``bench_value_iteration``: value iteration against quantecon;
* ``bench_dqn``: DQN training throughput against Stable-Baselines3;
* ``dqn_learning``: the DQN learning study and its ablations;
* ``observation_study``: the same DQN on the camera, bird's-eye view, pixels and kinematics;
* ``eval_agents``: the driving quality of the value-iteration driver and baselines;
* ``time_to_driver``: wall-clock from scratch to a competent Highway driver (issue #18).

The peers (highway-env, quantecon, CarRacing-v3's Box2D) are no lanesim dependencies: each
runs in a venv of its own (:func:`lanesim_bench.common.ensure_venv`), built on first use.
"""
