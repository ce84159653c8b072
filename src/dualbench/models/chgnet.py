"""CHGNet: the pretrained weights shipped in the chgnet package (0.3.0 and 0.2.0 trained on
MPtrj PBE(+U), r2scan transfer-learned on MP-r2SCAN), or a fine-tuned checkpoint."""

from __future__ import annotations

import logging

from dualbench.models.checkpoints import read_checkpoint
from dualbench.models.spec import CHGNET_WEIGHTS, ModelSpec

log = logging.getLogger(__name__)


def load_chgnet(spec: ModelSpec, device: str):
    """The CHGNet model of ``spec`` on ``device`` (eval mode)."""
    from chgnet.model import CHGNet

    if spec.checkpoint is None:
        if spec.weights not in CHGNET_WEIGHTS:
            # CHGNet.load would say only "Unknown model_name"
            raise ValueError(
                f"chgnet has no weights {spec.weights!r}: the installed chgnet package ships"
                f" {', '.join(CHGNET_WEIGHTS)} (nothing is downloaded); a fine-tuned model is"
                " given by its checkpoint or model.json"
            )
        net = CHGNet.load(model_name=spec.weights, use_device=device, verbose=False)
    else:
        net = CHGNet.from_dict(read_checkpoint(spec.checkpoint)).to(device)
    net.eval()
    return net


def chgnet_calculator(net, device: str):
    """CHGNet's ASE calculator around a loaded model."""
    from chgnet.model.dynamics import CHGNetCalculator

    return CHGNetCalculator(net, use_device=device)
