"""Model loading: tiny-random, local folders, the random-init rule, and clear errors offline."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from minisumm.tools import hub
from minisumm.errors import MinisummError
from minisumm.tools.loading import byte_level_tokenizer
from minisumm.tools.loading import load_model_and_tokenizer


def test_tiny_random_is_the_same_model_every_call_and_leaves_the_rng_alone():
    torch.manual_seed(7)
    expected_next = torch.rand(1)
    torch.manual_seed(7)
    first, tokenizer = load_model_and_tokenizer("tiny-random")
    assert torch.equal(torch.rand(1), expected_next)  # building it did not consume the caller's RNG
    second, _ = load_model_and_tokenizer("tiny-random")
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert first.config.n_layer == 2 and first.config.n_embd == 64 and first.config.vocab_size == len(tokenizer)
    assert tokenizer.pad_token_id == tokenizer.eos_token_id == 256


@pytest.mark.parametrize("text", ["plain ascii", "Crème brûlée à Zürich", "北京市 東京", "rain 🌧️ then sun ☀️", ""])
def test_byte_level_tokenizer_round_trips_utf8(text):
    tokenizer = byte_level_tokenizer()
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert len(ids) == len(text.encode("utf-8"))  # one token per byte
    assert tokenizer.decode(ids) == text


def test_local_save_pretrained_folder_loads_the_same_weights(tmp_path):
    model, tokenizer = load_model_and_tokenizer("tiny-random")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tokenizer = load_model_and_tokenizer(str(tmp_path))
    ids = torch.tensor([loaded_tokenizer.encode("A local folder.")])
    assert torch.equal(model(ids).logits, loaded(ids).logits)


def test_folder_without_weights_needs_random_init(tmp_path):
    load_model_and_tokenizer("tiny-random")[0].config.save_pretrained(tmp_path)
    byte_level_tokenizer().save_pretrained(tmp_path)
    with pytest.raises(MinisummError, match="no weights; pass --random-init"):
        load_model_and_tokenizer(str(tmp_path))
    model, _ = load_model_and_tokenizer(str(tmp_path), random_init=True)
    assert model.config.n_layer == 2


def test_shared_gpt2_folder_builds_gpt2_small_with_random_init(shared_dir):
    with pytest.raises(MinisummError, match="--random-init"):
        load_model_and_tokenizer(str(shared_dir / "gpt2"))
    config = GPT2Config.from_pretrained(shared_dir / "gpt2")
    assert config.n_layer == 12 and config.n_embd == 768  # the full model is built in the benchmarks


def test_tokenizer_that_does_not_fit_the_model_is_refused(tmp_path):
    small = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=64, n_embd=16, n_layer=1, n_head=2))
    small.save_pretrained(tmp_path)
    byte_level_tokenizer().save_pretrained(tmp_path)  # 257 tokens for a 100-token vocabulary
    with pytest.raises(MinisummError, match="257 tokens but the model's vocabulary has 100"):
        load_model_and_tokenizer(str(tmp_path))


def test_missing_folder_and_non_gpt2_model_are_one_sentence(tmp_path):
    with pytest.raises(MinisummError, match="does not exist"):
        load_model_and_tokenizer(str(tmp_path / "missing"))
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    byte_level_tokenizer().save_pretrained(tmp_path)
    with pytest.raises(MinisummError):
        load_model_and_tokenizer(str(tmp_path), random_init=True)


def test_unknown_hub_id_without_network_is_one_sentence_listing_offline_choices(monkeypatch):
    hub.reachable.cache_clear()
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: as good as no network
    try:
        with pytest.raises(MinisummError) as error:
            load_model_and_tokenizer("minisumm-test/no-such-model")
    finally:
        hub.reachable.cache_clear()
    message = str(error.value)
    assert "'minisumm-test/no-such-model' could not be downloaded" in message
    for choice in ("local save_pretrained folder", "tiny-news", "HF_HUB_OFFLINE=1"):
        assert choice in message
    assert "\n" not in message


def test_fused_gelu_is_gpt2s_gelu_new_and_saves_nothing_but_its_input():
    from transformers.activations import NewGELUActivation

    from minisumm.speedups.fused_gelu import TanhGELU, use_fused_gelu
    x = (torch.randn(64, 3072) * 3).requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        fused = TanhGELU()(x)
    assert all(t.data_ptr() == x.data_ptr() for t in saved)
    torch.testing.assert_close(fused, NewGELUActivation()(x), rtol=1e-6, atol=1e-6)
    model, _ = load_model_and_tokenizer("tiny-random")
    ids = torch.randint(0, 256, (2, 16))
    before = model(input_ids=ids).logits
    use_fused_gelu(model)
    assert all(isinstance(block.mlp.act, TanhGELU) for block in model.transformer.h)
    torch.testing.assert_close(model(input_ids=ids).logits, before, rtol=1e-5, atol=1e-5)


def test_a_model_folder_with_only_pytorch_model_bin_is_refused_never_unpickled(tmp_path):
    from test_checkpoint import _Exploit

    folder = tmp_path / "gpt2-bin"
    model, tokenizer = load_model_and_tokenizer("tiny-random")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    torch.save({"weights": _Exploit(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(MinisummError, match=r"only as pytorch_model.bin.*never loads.*save_pretrained"):
        load_model_and_tokenizer(str(folder))
    assert not marker.exists()


def test_build_returns_the_config_as_built_and_leaves_the_caller_s_alone():
    from minisumm.config import RunConfig
    from minisumm.model import build
    from minisumm.tools.loading import load

    config = RunConfig()
    config.model.model, config.method.method = "tiny-random", "lora"
    assert config.data.max_length == 1024
    model, _, trainable, built = build(config, load)
    assert built.data.max_length == model.config.n_positions == 512  # capped at the model's positions
    assert config.data.max_length == 1024 and built is not config
    assert len(trainable) > 0 and built.method == config.method
