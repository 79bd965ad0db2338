"""Pixel observations: shape, dtype, the frame stack's order, reset fill, final frames of a vector env."""

import numpy as np

import envs


def test_stack_holds_the_last_frames_oldest_first():
    env = envs.make("robotrl/CartPole-v0", pixels={"size": 84, "stack": 4, "camera": "side"}, discretize_actions=2)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
        assert all(np.array_equal(obs[0], f) for f in obs)  # after reset: copies of the first frame
        assert obs.max() > 60  # the scene is lit: not a black image
        history = [obs[-1]]
        for _ in range(5):
            obs, *_ = env.step(1)
            history.append(obs[-1])
        assert all(np.array_equal(obs[k], history[-4 + k]) for k in range(4))
        assert not np.array_equal(history[0], history[-1])  # the cart moved
    finally:
        env.close()


def test_skip_holds_the_action_and_sums_the_rewards_of_the_skipped_steps():
    spec = {"size": 32, "stack": 2, "camera": "side"}
    one = envs.make("robotrl/CartPole-v0", pixels=spec, discretize_actions=2)
    two = envs.make("robotrl/CartPole-v0", pixels={**spec, "skip": 2}, discretize_actions=2)
    try:
        one.reset(seed=3)
        two.reset(seed=3)
        lengths = {"one": 0, "two": 0}
        for step in range(400):
            action = (step // 7) % 2 if step < 30 else 1  # wobble, then push one way until it falls
            frames, reward, terminated, truncated, _ = two.step(action)
            lengths["two"] += 1
            total = 0.0
            for _ in range(2):
                single, r, term_one, trunc_one, _ = one.step(action)
                lengths["one"] += 1
                total += r
                if term_one or trunc_one:
                    break
            assert reward == total
            assert np.array_equal(frames[-1], single[-1])  # rendered after the second of the two steps
            assert terminated == term_one
            if terminated or truncated:
                break
        assert terminated, "pushing one way should end the episode"
        assert lengths["two"] == (lengths["one"] + 1) // 2
    finally:
        one.close()
        two.close()


def test_delay_shows_each_frame_one_decision_late():
    spec = {"size": 32, "stack": 2, "camera": "side"}
    now = envs.make("robotrl/CartPole-v0", pixels=spec, discretize_actions=2)
    late = envs.make("robotrl/CartPole-v0", pixels={**spec, "delay": 1}, discretize_actions=2)
    try:
        first, _ = now.reset(seed=5)
        first_late, _ = late.reset(seed=5)
        assert np.array_equal(first, first_late)
        seen_now, seen_late = [first[-1]], [first_late[-1]]
        for _ in range(6):
            seen_now.append(now.step(1)[0][-1])
            seen_late.append(late.step(1)[0][-1])
        # The first decision still sees the reset's frame; each later one, the frame of the decision before.
        assert np.array_equal(seen_late[1], seen_now[0])
        assert all(np.array_equal(seen_late[k], seen_now[k - 1]) for k in range(1, 7))
        assert not np.array_equal(seen_now[6], seen_now[5])  # the cart moved: a delay shows
    finally:
        now.close()
        late.close()


def test_vector_pixel_env_returns_final_frames_for_bootstrapping():
    env = envs.make_vec("robotrl/CartPole-v0", 2, pixels={"size": 32, "stack": 2, "camera": "side"},
                        discretize_actions=2)
    try:
        assert env.single_observation_space.shape == (2, 32, 32)
        obs, _ = env.reset(seed=1)
        for _ in range(300):
            obs, _, terminated, _, info = env.step(np.ones(2, dtype=np.int64))
            if terminated.any():
                i = int(np.flatnonzero(terminated)[0])
                final = info["final_obs"][i]
                assert final.shape == (2, 32, 32) and final.dtype == np.uint8
                assert np.array_equal(obs[i][0], obs[i][1])  # the reset observation is a fresh stack
                assert not np.array_equal(final[1], obs[i][1])  # the final frame shows the fallen pole
                return
        raise AssertionError("pushing one way for 300 steps should end an episode")
    finally:
        env.close()


def test_tracking_camera_shows_where_the_cart_is_and_the_pole():
    """The camera that follows the cart must still show the cart's place on the rail (the shaded wall
    behind it) and its motion (the wall's stripes), or a pixel policy cannot keep the cart from running
    off the end."""
    import itertools

    import mujoco

    from envs.sim import load_model
    from envs.wrappers.pixels import GRAY_WEIGHTS, fast_renderer

    model = load_model("cartpole.xml")
    data = mujoco.MjData(model)
    renderer = fast_renderer(model, 84)
    try:
        def band(x: float) -> np.ndarray:
            data.qpos[:] = (x, 0.0)
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, camera="track")
            gray = renderer.render().astype(np.float32) @ GRAY_WEIGHTS
            return gray[20:30]  # rows above the cart: wall, and the upright pole in the middle column

        backgrounds, pole_contrast, motion = [], [], []
        for x in (-2.0, -1.0, 0.0, 1.0, 2.0):
            rows = band(x)
            backgrounds.append(float(np.median(rows)))
            pole_contrast.append(float(np.median(rows) - rows.min()))
            # Moving 5 cm (two env steps at 1.25 m/s) must visibly change the view: the velocity cue.
            motion.append(float(np.abs(band(x + 0.05) - rows).mean()))
        assert all(b - a > 5 for a, b in itertools.pairwise(backgrounds)), backgrounds
        assert min(pole_contrast) > 40, pole_contrast
        assert min(motion) > 4, motion  # 0.85 gray levels on the first wall's 0.5 m bands, 8.8 on the stripes
    finally:
        renderer.close()
