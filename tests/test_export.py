"""Export: a plain transformers folder that loads without minisumm, and PEFT adapter folders."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from minisumm import methods
from minisumm.tools.checkpoint import load_checkpoint
from minisumm.errors import MinisummError, run_cli
from minisumm.tools.export import main as export_main
from minisumm.tools.loading import TINY_RANDOM
from minisumm.tools.loading import load_model_and_tokenizer
from test_checkpoint import saved

# Runs in a fresh interpreter where importing minisumm fails, as on a machine without it.
LOAD_WITHOUT_MINISUMM = r"""
import sys
sys.modules["minisumm"] = None
import torch
from safetensors.torch import save_file
from transformers import GPT2LMHeadModel, pipeline
folder, ids, out = sys.argv[1], [int(i) for i in sys.argv[2].split(",")], sys.argv[3]
model = GPT2LMHeadModel.from_pretrained(folder).eval()
with torch.no_grad():
    logits = model(torch.tensor([ids])).logits
generator = pipeline("text-generation", model=folder, device="cpu")
text = generator("The council met on Monday.", max_new_tokens=5, do_sample=False)[0]["generated_text"]
assert text.startswith("The council met on Monday."), text
save_file({"logits": logits.contiguous()}, out)
"""


@pytest.mark.parametrize("method", ["lora", "last-layers", "full"])
def test_hf_export_loads_in_plain_transformers_with_equal_logits(tmp_path, method):
    folder, _ = saved(tmp_path, method)
    out = tmp_path / "hf"
    assert run_cli(export_main, [str(folder), "--to", "hf", str(out)]) == 0
    model, tokenizer, _ = load_checkpoint(folder)
    ids = tokenizer.encode("Exported weights, same logits.")
    with torch.no_grad():
        expected = model(torch.tensor([ids])).logits
    logits_file = tmp_path / "logits.safetensors"
    subprocess.run([sys.executable, "-c", LOAD_WITHOUT_MINISUMM, str(out), ",".join(map(str, ids)),
                    str(logits_file)], check=True, capture_output=True, timeout=120)
    exported = load_file(out / "model.safetensors")
    assert not any("lora" in key for key in exported)
    # The weights are exactly the merged model's (the merge itself is tested against nn.Linear in test_lora).
    merged = methods.merge_and_unload(load_checkpoint(folder)[0]).state_dict()
    assert all(torch.equal(tensor, merged[key]) for key, tensor in exported.items())
    # The logits agree to float32 rounding. Another process may sum in another order (MKL's dynamic threading
    # under load gave 1.8e-4 on logits of magnitude 6; conftest pins it, other BLAS libraries have their own
    # ways), so the tolerance is 1e-3; an export without the trained weights is off by far more (last line).
    torch.testing.assert_close(load_file(logits_file)["logits"], expected, rtol=1e-4, atol=1e-3)
    base, _ = load_model_and_tokenizer(TINY_RANDOM)
    with torch.no_grad():
        assert (base(torch.tensor([ids])).logits - expected).abs().max() > 0.1


def test_soft_prompt_cannot_go_to_hf_format_and_nothing_is_written(tmp_path):
    folder, _ = saved(tmp_path, "prompt")
    with pytest.raises(MinisummError, match="PEFT's prompt-tuning format"):
        export_main([str(folder), "--to", "hf", str(tmp_path / "hf")])
    assert not (tmp_path / "hf").exists() and not list(tmp_path.glob(".hf.tmp-*"))


def test_peft_lora_folder(tmp_path):
    folder, model = saved(tmp_path, "lora")
    out = tmp_path / "peft"
    export_main([str(folder), "--to", "peft", str(out)])
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["task_type"] == "CAUSAL_LM"
    assert config["r"] == 8 and config["lora_alpha"] == 16 and config["fan_in_fan_out"] is True
    assert config["target_modules"] == ["c_attn"]
    assert config["base_model_name_or_path"] == str((out / "base_model").resolve())  # test_export_peft loads it
    tensors = load_file(out / "adapter_model.safetensors")
    assert set(tensors) == {f"base_model.model.transformer.h.{i}.attn.c_attn.lora_{ab}.weight"
                            for i in range(2) for ab in "AB"}
    assert tensors["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"].shape == (8, 64)
    assert tensors["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"].shape == (192, 8)


def test_peft_prompt_folder_and_refusals(tmp_path):
    folder, model = saved(tmp_path, "prompt")
    out = tmp_path / "peft"
    export_main([str(folder), "--to", "peft", str(out)])
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "PROMPT_TUNING" and config["num_virtual_tokens"] == 20
    assert config["token_dim"] == 64
    tensors = load_file(out / "adapter_model.safetensors")
    assert torch.equal(tensors["prompt_embeddings"], model.soft_prompt.embedding.detach())
    with pytest.raises(MinisummError, match="already exists and is not empty"):
        export_main([str(folder), "--to", "peft", str(out)])
    full_folder, _ = saved(tmp_path / "f", "full")
    with pytest.raises(MinisummError, match="not an adapter"):
        export_main([str(full_folder), "--to", "peft", str(tmp_path / "peft-full")])


def test_export_onto_a_file_or_into_a_read_only_folder_is_one_line(tmp_path, capsys, read_only_dir):
    folder, _ = saved(tmp_path, "lora")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for out in (a_file, read_only_dir / "hf"):
        assert run_cli(export_main, [str(folder), "--to", "hf", str(out), "--overwrite"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and str(out) in err
    assert a_file.read_text() == "mine" and not list(read_only_dir.iterdir())
