"""🤗 wrapper of the optical flow model (config, model, output), registered with `AutoConfig` and, with its
pipeline, as the `optical-flow` task. Conversion of DeepMind's official model is in `convert.py`."""

from dataclasses import dataclass
from typing import Optional

import torch
from transformers.modeling_outputs import ModelOutput
from transformers.pipelines import PIPELINE_REGISTRY

from perceiver._compat import deprecated_aliases
from perceiver.model.core.huggingface import PerceiverBackendConfig, PerceiverBackendModel, register_auto_class
from perceiver.model.vision.optical_flow.backend import OpticalFlow, OpticalFlowConfig
from perceiver.model.vision.optical_flow.pipeline import OpticalFlowPipeline


class OpticalFlowPerceiverConfig(PerceiverBackendConfig):
    model_type = "perceiver-io-optical-flow"
    backend_config_class = OpticalFlowConfig


@dataclass
class OpticalFlowPerceiverOutput(ModelOutput):
    """`flow` `(b, h, w, 2)`; `logits` is the same tensor under the name used by perceiver-io 0.11 and transformers."""

    flow: Optional[torch.FloatTensor] = None

    @property
    def logits(self) -> Optional[torch.FloatTensor]:
        return self.flow


class OpticalFlowPerceiver(PerceiverBackendModel):
    """🤗 optical flow model: `inputs` `(b, 2, 27, h, w)` (two frames, each pixel a 3x3 RGB patch) -> `flow`."""

    config_class = OpticalFlowPerceiverConfig
    backend_model_class = OpticalFlow
    main_input_name = "inputs"

    def forward(self, inputs: torch.Tensor, return_dict: Optional[bool] = None, **kwargs) -> OpticalFlowPerceiverOutput:
        return OpticalFlowPerceiverOutput(flow=self.backend_model(inputs))


register_auto_class(OpticalFlowPerceiverConfig, OpticalFlowPerceiver)
PIPELINE_REGISTRY.register_pipeline("optical-flow", pipeline_class=OpticalFlowPipeline, pt_model=OpticalFlowPerceiver)


# conversion of DeepMind's model moved to `convert.py`; its names stay importable from here (0.11's place)
_CONVERT = "perceiver.model.vision.optical_flow.convert"
__getattr__ = deprecated_aliases(
    __name__,
    {
        **{
            name: (f"{_CONVERT}.{name}", f"{_CONVERT}:{name}")
            for name in ("convert_config", "convert_model", "copy_weights")
        },
        **{
            name: (f"{_CONVERT}.copy_weights", f"perceiver.model.vision.compat:{name}")
            for name in ("copy_flow_encoder_params", "copy_flow_decoder_params")
        },
    },
)
