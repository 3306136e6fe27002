import torch

from uavrt.models.demo import write_demo_weights
from uavrt.models.text import TextEncoder


def test_text_encoder_loads_from_release_folders_and_pads_to_77(tmp_path):
    root = write_demo_weights(tmp_path / "w", with_raft=False)
    enc = TextEncoder.from_folders(root / "text_encoder", root / "tokenizer")
    a = enc.encode("a cat best quality, extremely detailed")
    b = enc.encode("blur, worst quality")
    assert a.shape == (1, 77, 32) and a.dtype == torch.float32
    assert not torch.allclose(a, b)
    assert torch.equal(a, enc.encode("a cat best quality, extremely detailed"))


def test_missing_text_encoder_folder_is_named(tmp_path):
    import pytest
    from uavrt.errors import WeightsError
    with pytest.raises(WeightsError, match="text_encoder"):
        TextEncoder.from_folders(tmp_path / "text_encoder", tmp_path / "tokenizer")
