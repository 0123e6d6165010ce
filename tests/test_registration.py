"""Known-answer tests of the registration core: affines, warping, B-spline FFD, NMI, fusion."""

import numpy as np
import pytest
import torch

from napari_cardiac_priors.errors import InputError
from napari_cardiac_priors.landmarks import Landmarks
from napari_cardiac_priors.metrics import dice
from napari_cardiac_priors.registration import (
    FFDTransform,
    Lattice,
    Level,
    bending_energy,
    label_affine,
    landmark_affine,
    majority_vote,
    nmi,
    patch_fusion,
    register_ffd,
    select_atlases,
    warp_stack,
    warp_volume,
)
from napari_cardiac_priors.registration.ffd import evaluate
from napari_cardiac_priors.registration.warp import index_to_normalised, world_coordinates
from napari_cardiac_priors.volume import Volume, resample


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a 2-core machine that is busy with something else, two threads
    oversubscribe it and these small problems get ~10x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def subjects():
    from napari_cardiac_priors.phantom import make_subject

    return [make_subject(i, pathology="NOR")["ed"] for i in range(3)]


def _random_affine(rng) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    m = np.eye(4)
    m[:3, :3] = q @ (np.eye(3) + 0.15 * rng.normal(size=(3, 3)))
    m[:3, 3] = rng.uniform(-30, 30, size=3)
    return m


# -- affines --------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_landmark_affine_recovers_a_random_affine(subjects, seed):
    fixed = subjects[0].landmarks
    m = _random_affine(np.random.default_rng(seed))
    moving = fixed.transformed(np.linalg.inv(m))
    np.testing.assert_allclose(landmark_affine(moving, fixed), m, atol=1e-4)
    np.testing.assert_allclose(landmark_affine(moving, fixed) @ np.linalg.inv(m), np.eye(4), atol=1e-8)


def test_landmark_affine_drops_nan_rows(subjects):
    fixed = subjects[0].landmarks
    m = _random_affine(np.random.default_rng(5))
    moving = fixed.transformed(np.linalg.inv(m))
    moving.positions[0] = np.nan  # a different row missing in each set: 4 pairs left
    fixed = Landmarks(fixed.positions.copy())
    fixed.positions[1] = np.nan
    np.testing.assert_allclose(landmark_affine(moving, fixed), m, atol=1e-4)


def test_landmark_affine_needs_four_pairs(subjects):
    lm = subjects[0].landmarks
    other = Landmarks(lm.positions.copy())
    other.positions[[0, 1, 2]] = np.nan
    with pytest.raises(InputError, match="at least 4 landmarks in both sets, got 3"):
        landmark_affine(lm, other)


def test_landmark_affine_refuses_degenerate_points(subjects):
    lm = subjects[0].landmarks
    planar = Landmarks(lm.positions.copy())
    planar.positions[[4, 5]] = np.nan  # the four remaining lie in one short-axis slice
    with pytest.raises(InputError, match="coplanar"):
        landmark_affine(planar, lm)
    line = Landmarks(np.outer(np.arange(6.0), [1.0, 2.0, 3.0]))
    with pytest.raises(InputError, match="collinear"):
        landmark_affine(line, lm)
    same = Landmarks(np.ones((6, 3)))
    with pytest.raises(InputError, match="duplicated"):
        landmark_affine(lm, same)


def test_label_affine_recovers_a_similarity(subjects):
    lab = subjects[0].labels
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    m = np.eye(4)
    m[:3, :3] = 1.1 * q
    m[:3, 3] = [5.0, -8.0, 3.0]
    moved = Volume(lab.array, affine=m @ lab.affine, kind="labels")  # moved world = m @ world
    np.testing.assert_allclose(label_affine(moved, lab), np.linalg.inv(m), atol=1e-6)


def test_label_affine_aligns_centroids_and_improves_overlap(subjects):
    fixed, moving = subjects[0].labels, subjects[1].labels
    m = label_affine(moving, fixed)
    assert np.linalg.det(m[:3, :3]) > 0
    warped = warp_volume(moving, fixed, affine=m).array
    fg = [1, 2, 3]
    before = dice(np.isin(moving.array, fg), np.isin(fixed.array, fg))
    after = dice(np.isin(warped, fg), np.isin(fixed.array, fg))
    assert after >= before - 0.01 and after > 0.8


# -- warping --------------------------------------------------------------------------------
def test_index_to_normalised_matches_the_volume_geometry(oblique_affine, labels_volume):
    source = Volume(np.zeros((9, 11, 13)), affine=_random_affine(np.random.default_rng(1)) @ oblique_affine)
    world = _random_affine(np.random.default_rng(2))
    idx = np.array([[0, 0, 0], [6, 19, 23], [3.5, 2.25, 10.0]])
    m = index_to_normalised(labels_volume.affine, source.affine, source.spatial_shape, world)
    got = idx @ m[:3, :3].T + m[:3, 3]
    w = labels_volume.index_to_world(idx)
    w_src = (w - world[:3, 3]) @ np.linalg.inv(world[:3, :3]).T
    src_idx = source.world_to_index(w_src)  # (z, y, x)
    want = ((2 * src_idx + 1) / np.array(source.spatial_shape) - 1)[:, ::-1]  # (x, y, z)
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_zero_warp_returns_the_input_exactly(labels_volume, subjects):
    for vol in (labels_volume, subjects[0].labels):
        for mode in ("nearest", "linear"):
            out = warp_volume(vol, vol, displacement=np.zeros((*vol.spatial_shape, 3)), mode=mode)
            assert out.array.dtype == vol.array.dtype
            np.testing.assert_array_equal(out.array, vol.array)


def test_identity_ffd_returns_the_atlas_exactly(subjects):
    lab = subjects[0].labels
    t = register_ffd(lab, [lab, lab], [np.eye(4)] * 2, levels=[Level(20.0, 2.5, 0, 0.5)])
    assert isinstance(t, FFDTransform) and len(t) == 2
    assert torch.count_nonzero(t.displacement()) == 0
    np.testing.assert_array_equal(t.warp([lab, lab]), np.stack([lab.array] * 2))


def test_translations_move_labels_the_right_way():
    lab = np.zeros((4, 6, 8), np.uint8)
    lab[1:3, 2:4, 3:5] = 2
    vol = Volume(lab, spacing=(2.0, 1.5, 1.25), kind="labels")
    m = np.eye(4)
    m[0, 3] = 1.25  # atlas world -> target world: one voxel towards +x
    np.testing.assert_array_equal(warp_volume(vol, vol, affine=m).array, np.roll(lab, 1, axis=2))
    u = np.zeros((4, 6, 8, 3))
    u[..., 1] = 1.5  # pull from one voxel further along +y
    np.testing.assert_array_equal(warp_volume(vol, vol, displacement=u).array, np.roll(lab, -1, axis=1))


def test_warp_agrees_with_scipy_resampling(labels_volume, oblique_affine):
    grid = np.diag([0.45, 0.55, 0.35, 1.0])
    # offsets chosen so that no sample lies within 0.02 voxel of half-way between two voxels: a
    # rounding tie would be decided by float error, differently by torch and scipy
    grid[:3, 3] = [-0.03, 0.17, 0.25]
    ref = Volume(np.zeros((12, 30, 30)), affine=oblique_affine @ grid)
    ours = warp_volume(labels_volume, ref).array
    theirs = resample(labels_volume, ref).array
    assert np.mean(ours == theirs) > 0.995
    both = warp_stack([labels_volume, labels_volume], ref)
    np.testing.assert_array_equal(both[1], ours)


# -- B-splines --------------------------------------------------------------------------------
def test_bspline_reproduces_constants_and_measures_bending():
    lat = Lattice(origin=(-4.0, -4.0, -4.0), step=(4.0, 4.0, 4.0), size=(7, 7, 7), spacing=8.0)
    pos = np.arange(0, 12)
    basis = [lat.basis(d, pos) for d in range(3)]
    const = torch.full((1, 3, 7, 7, 7), 2.5)
    np.testing.assert_allclose(evaluate(const, *basis).numpy(), 2.5, atol=1e-5)
    assert float(bending_energy(const)[0]) == pytest.approx(0.0, abs=1e-10)
    j = torch.arange(7, dtype=torch.float32)
    linear = torch.zeros((1, 3, 7, 7, 7))
    linear[0, 0] = j[None, None, :] + 2 * j[:, None, None]
    assert float(bending_energy(linear)[0]) == pytest.approx(0.0, abs=1e-8)
    quad = torch.zeros((1, 3, 7, 7, 7))
    quad[0, 1] = (j**2)[None, :, None]  # u_y = t^2 + 1/3 along y (lattice units): u_y,yy = 2
    assert float(bending_energy(quad)[0]) == pytest.approx(4.0, rel=1e-6)
    t = (pos - lat.origin[1]) / lat.step[1]
    np.testing.assert_allclose(evaluate(quad, *basis)[0, 0, :, 0, 1].numpy(), t**2 + 1 / 3, rtol=1e-5)


def _smooth_displacement(vol: Volume) -> np.ndarray:
    """A few-mm sinusoidal field (wavelengths 90-110 mm) on ``vol``'s grid, world mm."""
    w = world_coordinates(vol.spatial_shape, vol.affine).numpy()
    amp, lam, phase = (3.0, -2.5, 2.0), (90.0, 110.0, 100.0), (0.3, 1.1, 2.0)
    return np.stack([amp[i] * np.sin(2 * np.pi * w[..., (i + 1) % 3] / lam[i] + phase[i]) for i in range(3)],
                    axis=-1).astype(np.float32)


def test_ffd_recovers_a_known_smooth_deformation(subjects):
    atlas = subjects[0].labels
    truth = _smooth_displacement(atlas)
    target = warp_volume(atlas, atlas, displacement=truth)
    before = [dice(atlas.array == k, target.array == k) for k in (1, 2, 3)]
    assert min(before) < 0.9
    t = register_ffd(target, [atlas], [np.eye(4)])
    out = t.warp([atlas])[0]
    after = [dice(out == k, target.array == k) for k in (1, 2, 3)]
    assert min(after) >= 0.97, after
    heart = target.array > 0  # the field is only observable where the labels are
    error = np.linalg.norm(t.displacement(0).numpy() - truth, axis=-1)[heart]
    assert error.mean() < 0.5  # mm


def test_ffd_batches_atlases_on_shared_structures(subjects):
    full = subjects[0].labels
    target = full.with_array(np.where(full.array == 4, 0, full.array).astype(np.uint8))  # no RV wall
    other = subjects[1].labels
    m = landmark_affine(subjects[1].landmarks, subjects[0].landmarks)
    levels = [Level(40.0, 2.5, 15, 1.0), Level(20.0, 2.5, 15, 0.5)]
    t = register_ffd(target, [full, other], [np.eye(4), m], levels=levels)
    warped = t.warp([full, other])
    assert 4 in warped[0] and 4 in warped[1]  # the atlas' RV wall is carried along
    for k in (1, 2, 3, 4):  # already aligned: (almost) nothing moves
        assert dice(warped[0] == k, full.array == k) > 0.98
    affine_only = warp_volume(other, target, affine=m).array
    for k in (1, 2, 3):
        assert dice(warped[1] == k, target.array == k) > dice(affine_only == k, target.array == k)


def test_register_ffd_refuses_bad_input(subjects):
    lab = subjects[0].labels
    with pytest.raises(InputError, match="affines"):
        register_ffd(lab, [lab], [])
    with pytest.raises(InputError, match="no atlases"):
        register_ffd(lab, [], [])
    empty = lab.with_array(np.zeros_like(lab.array))
    with pytest.raises(InputError, match="share no structure"):
        register_ffd(empty, [lab], [np.eye(4)])
    image = Volume(lab.array.astype(np.float32), affine=lab.affine, kind="image")
    with pytest.raises(InputError, match="label map"):
        register_ffd(lab, [image], [np.eye(4)])


# -- selection --------------------------------------------------------------------------------
def test_nmi_of_a_map_with_itself_is_maximal(subjects):
    a = subjects[0].labels.array
    b = subjects[1].labels.array
    assert nmi(a, a) == pytest.approx(2.0)
    assert nmi(a, (a + 1) % 5) == pytest.approx(2.0)  # a relabelling carries the same information
    assert 1.0 <= nmi(a, b) < 2.0
    assert nmi(a, b) == pytest.approx(nmi(b, a))
    assert nmi(np.zeros(10, int), np.zeros(10, int)) == 2.0
    with pytest.raises(InputError, match="same shape"):
        nmi(a, b[:-1])


def test_select_atlases_ranks_an_identical_atlas_first(subjects):
    target = subjects[0].labels
    atlases = [subjects[1].labels, subjects[0].labels, subjects[2].labels]
    idx, scores = select_atlases(target, atlases, [np.eye(4)] * 3, top=2)
    assert list(idx)[0] == 1 and len(idx) == 2
    assert scores[0] == pytest.approx(2.0) and scores[1] < scores[0]


# -- fusion -----------------------------------------------------------------------------------
def test_majority_vote():
    warped = np.array([[[[1, 2, 0, 3]]], [[[1, 3, 2, 3]]], [[[0, 3, 1, 4]]]], np.uint8)  # (3, 1, 1, 4)
    np.testing.assert_array_equal(majority_vote(warped), [[[1, 3, 0, 3]]])  # 0/1/2 tie -> 0
    same = np.stack([np.arange(24).reshape(2, 3, 4) % 5] * 3)
    np.testing.assert_array_equal(majority_vote(same), same[0])


def test_fusing_identical_atlases_returns_the_atlas(subjects):
    lab = subjects[0].labels.array
    atlases = np.stack([lab] * 3)
    np.testing.assert_array_equal(majority_vote(atlases), lab)
    np.testing.assert_array_equal(patch_fusion(lab, atlases, h=0.5), lab)
    # With the paper's h = 10 eq. 5 is a weighted vote over the search window: it may move a
    # few jagged boundary voxels, never more.
    fused = patch_fusion(lab, atlases)
    assert np.mean(fused != lab) < 1e-3
    assert min(dice(fused == k, lab == k) for k in (1, 2, 3, 4)) > 0.99
    img = subjects[0].image.array.astype(np.float32) / 1500.0
    fused = patch_fusion(img, atlases, warped_images=np.stack([img] * 3), h=0.05)
    assert np.mean(fused != lab) < 1e-3


def test_patch_fusion_follows_the_atlas_that_matches_the_target(subjects):
    a, b = subjects[0].labels.array, subjects[1].labels.array
    atlases = np.stack([a, b, b])
    mv = majority_vote(atlases)
    pf = patch_fusion(a, atlases)
    for k in (1, 2, 3):
        assert dice(pf == k, a == k) > dice(mv == k, a == k) + 0.05


def test_patch_fusion_refuses_bad_windows(subjects):
    lab = subjects[0].labels.array[:4]
    with pytest.raises(InputError, match="patch"):
        patch_fusion(lab, lab[None], patch=(1, 6, 7))
    with pytest.raises(InputError, match="shape"):
        patch_fusion(lab[:2], lab[None])
