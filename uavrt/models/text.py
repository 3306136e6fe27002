"""Prompt encoding with transformers' CLIPTextModel + CLIPTokenizer (the release's text tower).

Embeddings are the last hidden state of 77 padded tokens, as the release pipeline computes them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import WeightsError


class TextEncoder:
    def __init__(self, model, tokenizer, device="cpu", dtype=torch.float32):
        self.model = model.to(device=device, dtype=dtype).eval()
        self.tokenizer = tokenizer
        self.device = torch.device(device)

    @classmethod
    def from_folders(cls, text_encoder_dir, tokenizer_dir, device="cpu", dtype=torch.float32):
        from transformers import CLIPTextModel, CLIPTokenizer
        for what, d in (("text_encoder", text_encoder_dir), ("tokenizer", tokenizer_dir)):
            if not Path(d).is_dir():
                raise WeightsError(f"missing folder {str(d)!r} ({what}: a transformers "
                                   f"{'CLIPTextModel' if what == 'text_encoder' else 'CLIPTokenizer'} folder)")
        try:
            tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
            model = CLIPTextModel.from_pretrained(str(text_encoder_dir))
        except (OSError, ValueError) as e:
            raise WeightsError(f"cannot load the text encoder from {str(text_encoder_dir)!r} / "
                               f"{str(tokenizer_dir)!r}: {e}") from e
        return cls(model, tokenizer, device, dtype)

    @property
    def max_length(self) -> int:
        return min(int(self.tokenizer.model_max_length), int(self.model.config.max_position_embeddings))

    def encode(self, prompt: str) -> torch.Tensor:
        """prompt -> [1, 77, D] float32 embeddings."""
        ids = self.tokenizer([prompt], padding="max_length", max_length=self.max_length, truncation=True,
                             return_tensors="pt").input_ids.to(self.device)
        with torch.inference_mode():
            return self.model(ids).last_hidden_state.float()
