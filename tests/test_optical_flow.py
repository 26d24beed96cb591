"""Optical flow: 0.11 compatibility, conversion from transformers, pipeline (patches, tiling, rendering), video."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers
from PIL import Image
from safetensors.torch import load_file
from transformers import pipeline

from perceiver.model.vision import optical_flow as of
from tests.conftest import FIXTURES

FIXTURE = FIXTURES / "optical_flow"

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model(image_shape=(8, 12)) -> of.OpticalFlowPerceiver:
    encoder = of.OpticalFlowEncoderConfig(
        image_shape=image_shape,
        num_patch_hidden_channels=8,
        num_frequency_bands=2,
        num_cross_attention_heads=1,
        num_cross_attention_qk_channels=16,
        num_self_attention_heads=2,
        num_self_attention_layers_per_block=1,
        init_scale=0.5,  # large weights: flow differs visibly between pixels
    )
    decoder = of.OpticalFlowDecoderConfig(image_shape=image_shape, num_cross_attention_heads=1, init_scale=0.5)
    config = of.OpticalFlowConfig(encoder, decoder, num_latents=4, num_latent_channels=16)
    return of.OpticalFlowPerceiver(of.OpticalFlowPerceiverConfig(config)).eval()


def textured_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    # smooth random texture, so that lossy video compression keeps it recognizable
    noise = np.random.default_rng(seed).random((height // 4 + 1, width // 4 + 1, 3))
    image = Image.fromarray((noise * 255).astype(np.uint8)).resize((width, height), Image.BICUBIC)
    return np.asarray(image)


# ---------------------------------------------------------------- perceiver-io 0.11 compatibility


def test_fixture_reproduces_flow():
    model = of.OpticalFlowPerceiver.from_pretrained(FIXTURE).eval()
    expected = load_file(FIXTURE / "expected.safetensors")
    with torch.no_grad():
        output = model(inputs=expected["inputs"])
    assert (output.flow - expected["flow"]).abs().max() <= 1e-4
    assert output.logits is output.flow  # perceiver-io 0.11 / transformers name


def test_fixture_layout_and_config(tmp_path):
    model = of.OpticalFlowPerceiver.from_pretrained(FIXTURE)
    fixture_state = load_file(FIXTURE / "model.safetensors")
    fresh = of.OpticalFlow(model.config.backend_config)
    assert {f"backend_model.{k}": tuple(v.shape) for k, v in fresh.state_dict().items()} == {
        k: tuple(v.shape) for k, v in fixture_state.items()
    }
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_config"] == json.loads((FIXTURE / "config.json").read_text())["model_config"]


# ---------------------------------------------------------------- conversion from transformers

SOURCE_CONFIGS = [
    dict(train_size=[8, 12], num_cross_attention_heads=2),
    dict(train_size=[6, 10], qk_channels=16, num_cross_attention_heads=2, cross_attention_shape_for_attention="q"),
    dict(train_size=[5, 7], d_latents=14, num_cross_attention_heads=7, num_blocks=1, cross_attention_widening_factor=2),
]


def tiny_source(**kwargs):
    config = transformers.PerceiverConfig(
        **{
            "num_latents": 8,
            "d_latents": 16,
            "num_blocks": 2,
            "num_self_attends_per_block": 2,
            "num_self_attention_heads": 2,
            "architectures": ["PerceiverForOpticalFlow"],
            **kwargs,
        }
    )
    source = transformers.PerceiverForOpticalFlow(config).eval()
    with torch.no_grad():
        for param in source.parameters():
            param.normal_(0.0, 0.3)
    return source


@pytest.mark.parametrize("kwargs", SOURCE_CONFIGS)
def test_convert_model_equals_source(tmp_path, kwargs):
    source = tiny_source(**kwargs)
    source.save_pretrained(tmp_path / "source")
    of.convert_model(tmp_path / "converted", str(tmp_path / "source"))
    model = of.OpticalFlowPerceiver.from_pretrained(tmp_path / "converted").eval()
    x = torch.randn(2, 2, 27, *kwargs["train_size"])
    with torch.no_grad():
        expected = source(inputs=x).logits
        flow = model(inputs=x).flow
    assert flow.shape == (2, *kwargs["train_size"], 2)
    assert expected.abs().max() > 0.01
    assert (flow - expected).abs().max() <= 1e-4


def test_convert_config_reads_the_source_layers_and_rejects_what_it_cannot_compute():
    source = tiny_source(train_size=[6, 10], num_cross_attention_heads=2, qk_channels=16)
    assert of.convert_config(source) == of.convert_config(source.config)  # 0.11 took the config
    encoder = of.convert_config(source).encoder
    channels = (encoder.num_patch_input_channels, encoder.num_patch_hidden_channels, encoder.num_frequency_bands)
    assert channels == (27, 64, 64)
    source.perceiver.input_preprocessor.position_embeddings.max_resolution = (12, 20)
    with pytest.raises(ValueError, match=r"max_resolution=\(12, 20\), the image size \(6, 10\)"):
        of.convert_config(source)


def test_convert_model_rejects_image_classifier(tmp_path):
    config = transformers.PerceiverConfig(
        num_latents=4,
        d_latents=16,
        num_blocks=1,
        num_self_attends_per_block=1,
        image_size=8,
        num_labels=2,
        num_cross_attention_heads=1,
        num_self_attention_heads=1,
    )
    config.architectures = ["PerceiverForImageClassificationLearned"]
    transformers.PerceiverForImageClassificationLearned(config).save_pretrained(tmp_path / "clf")
    with pytest.raises(ValueError, match=r"\['PerceiverForImageClassificationLearned'\].*PerceiverForOpticalFlow"):
        of.convert_model(tmp_path / "converted", str(tmp_path / "clf"))


@pytest.mark.parametrize("shape", [(1, 2, 27, 8, 13), (1, 3, 27, 8, 12), (1, 2, 9, 8, 12), (2, 27, 8, 12)])
def test_bad_model_input(shape):
    with pytest.raises(ValueError, match=r"inputs must have shape \(batch, 2, 27, 8, 12\).*got"):
        tiny_model()(inputs=torch.zeros(shape))


# ---------------------------------------------------------------- pipeline building blocks


def test_extract_patches_matches_reference():
    frames = torch.randn(3, 3, 5, 6)
    padded = F.pad(frames, (1, 1, 1, 1))
    # reference: channel (dy * 3 + dx) * 3 + c holds pixel (y + dy - 1, x + dx - 1) of color c
    reference = torch.cat([padded[:, :, dy : dy + 5, dx : dx + 6] for dy in range(3) for dx in range(3)], dim=1)
    assert torch.equal(of.extract_patches(frames), reference)


@pytest.mark.parametrize(
    "image_shape,tile_shape,overlap", [((8, 12), (8, 12), 4), ((21, 40), (8, 12), 3), ((9, 13), (8, 12), 0)]
)
def test_tiles_cover_image_and_blend_exactly(image_shape, tile_shape, overlap):
    origins = of.tile_origins(image_shape, tile_shape, overlap)
    ys, xs = sorted({y for y, _ in origins}), sorted({x for _, x in origins})
    for starts, size, tile in ((ys, image_shape[0], tile_shape[0]), (xs, image_shape[1], tile_shape[1])):
        assert starts[0] == 0 and starts[-1] == size - tile
        assert all(tile - overlap >= b - a > 0 for a, b in zip(starts, starts[1:]))
    field = np.random.default_rng(0).random((*image_shape, 2)).astype(np.float32)
    tiles = np.stack([field[y : y + tile_shape[0], x : x + tile_shape[1]] for y, x in origins])
    assert np.allclose(of.blend_tiles(tiles, origins, image_shape), field, atol=1e-6)


def test_render_optical_flow_color_wheel():
    flow = np.zeros((2, 3, 2), dtype=np.float32)
    flow[0, 1] = (1, 0)  # right
    flow[0, 2] = (-1, 0)  # left
    flow[1, 1] = (0, 1)  # down (image y axis)
    flow[1, 2] = (0.5, 0)  # right, half the largest magnitude
    image = of.render_optical_flow(flow)
    assert image.shape == (2, 3, 3) and image.dtype == np.uint8
    assert image[0, 0].tolist() == [255, 255, 255]  # zero flow is white
    red, green, blue = image[0, 1].astype(int)
    assert red == 255 and green < 60 and blue < 60  # right: red
    assert image[0, 2, 2] == 255 and image[0, 2, 0] < 60  # left: blue-cyan, no red
    assert image[1, 1, 1] > 200 and image[1, 1, 2] < 60  # down: green-yellow
    assert image[1, 2, 0] == 255 and 100 < image[1, 2, 1] < 160  # half magnitude: half saturated red
    assert of.render_optical_flow(flow * 10).tolist() == image.tolist()  # normalized by the largest magnitude
    with pytest.raises(ValueError, match=r"flow must have shape \(height, width, 2\)"):
        of.render_optical_flow(np.zeros((4, 4, 3)))


# ---------------------------------------------------------------- pipeline


def test_pipeline_equals_model_at_model_size(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path)
    flow_pipeline = pipeline("optical-flow", model=str(tmp_path))
    assert isinstance(flow_pipeline, of.OpticalFlowPipeline)
    image1, image2 = textured_image(8, 12, seed=1), textured_image(8, 12, seed=2)
    flow = flow_pipeline((image1, image2))

    frames = torch.from_numpy(np.stack([image1, image2])).float().permute(0, 3, 1, 2) / 255 * 2 - 1
    with torch.no_grad():
        expected = model(inputs=of.extract_patches(frames)[None]).flow[0].numpy() * 20
    assert flow.shape == (8, 12, 2) and flow.dtype == np.float32
    assert np.allclose(flow, expected, atol=1e-5)
    # PIL images give the same result
    assert np.allclose(flow_pipeline((Image.fromarray(image1), Image.fromarray(image2))), flow, atol=1e-6)


def test_pipeline_tiles_larger_images_in_micro_batches(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    flow_pipeline = pipeline("optical-flow", model=str(tmp_path))
    pairs = [(textured_image(20, 30, seed=s), textured_image(20, 30, seed=s + 1)) for s in range(2)]
    flows = flow_pipeline(pairs, micro_batch_size=1)
    assert len(flows) == 2 and flows[0].shape == (20, 30, 2)
    assert np.allclose(flow_pipeline(pairs[0], micro_batch_size=5), flows[0], atol=1e-5)
    assert not np.allclose(flows[0], flows[1])
    renderings = flow_pipeline(pairs, render=True)
    assert renderings[1].shape == (20, 30, 3) and renderings[1].dtype == np.uint8
    assert renderings[1].tolist() == of.render_optical_flow(flows[1]).tolist()


def test_pipeline_bad_input(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    flow_pipeline = pipeline("optical-flow", model=str(tmp_path))
    image = textured_image(8, 12)
    with pytest.raises(ValueError, match=r"must be an image pair \(image1, image2\), got a ndarray of shape"):
        flow_pipeline([image, image])  # a list of images, not of pairs
    with pytest.raises(ValueError, match="got a tuple of length 3"):
        flow_pipeline((image, image, image))
    with pytest.raises(
        ValueError, match=r"image 2 of image_pair has shape \(8, 12, 4\); allowed: \(height, width, 3\)"
    ):
        flow_pipeline((image, np.zeros((8, 12, 4))))
    with pytest.raises(ValueError, match="differ in shape"):
        flow_pipeline((image, textured_image(9, 12)))
    with pytest.raises(ValueError, match=r"image size \(7, 12\); allowed are sizes of at least the model's \(8, 12\)"):
        flow_pipeline((image[:7], image[:7]))
    with pytest.raises(ValueError, match=r"min_overlap=8 must be in \[0, 7\]"):
        flow_pipeline((image, image), min_overlap=8)


# ---------------------------------------------------------------- video


def test_video_round_trip_and_rendering(tmp_path):
    shift, num_frames = 3, 5
    texture = textured_image(24, 48 + shift * num_frames)
    frames = [texture[:, i * shift : i * shift + 48] for i in range(num_frames)]  # camera pans right
    video = tmp_path / "input.mp4"
    assert of.write_video(video, frames, fps=10) == num_frames

    pairs = list(of.read_frame_pairs(video))
    assert len(pairs) == num_frames - 1
    first, second = pairs[0]
    assert first.shape == (24, 48, 3) and first.dtype == np.uint8
    # the decoded frames still show the known shift: content moves left by `shift` pixels
    errors = [np.abs(first[:, s:].astype(float) - second[:, : 48 - s]).mean() for s in range(7)]
    assert int(np.argmin(errors)) == shift
    assert len(list(of.read_frame_pairs(video, max_pairs=2))) == 2

    model_dir = tmp_path / "model"
    tiny_model(image_shape=(16, 24)).save_pretrained(model_dir)
    flow_pipeline = pipeline("optical-flow", model=str(model_dir))
    output = tmp_path / "flow.avi"
    assert of.render_optical_flow_video(flow_pipeline, video, output, micro_batch_size=4) == num_frames - 1
    rendered = [pair[0] for pair in of.read_frame_pairs(output)]
    assert len(rendered) == num_frames - 2 and rendered[0].shape == (24, 48, 3)
    expected = flow_pipeline(pairs[0], render=True)
    # MJPG is lossy (and subsamples color), so compare loosely
    assert np.corrcoef(rendered[0].astype(float).ravel(), expected.astype(float).ravel())[0, 1] > 0.9


def test_video_bad_input(tmp_path):
    with pytest.raises(ValueError, match="is not a file"):
        next(of.read_frame_pairs(tmp_path / "missing.mp4"))
    with pytest.raises(ValueError, match=r"must end with one of \['.avi', '.mp4'\]"):
        of.write_video(tmp_path / "out.gif", [np.zeros((4, 4, 3), np.uint8)])
    with pytest.raises(ValueError, match=r"frame 0 has shape \(4, 4\)"):
        of.write_video(tmp_path / "out.mp4", [np.zeros((4, 4), np.uint8)])
