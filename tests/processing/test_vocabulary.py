"""Which prompt words a trained NUWA knows (nuwa_hf.processing.vocabulary): the record of the training captions' words
that train_caption_tokenizer keeps in tokenizer_config.json, the whole-word-token rule for tokenizers without it, and
the caption fillers that cannot carry a prompt alone."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from transformers import AutoTokenizer

from nuwa_hf.processing import NuwaImageProcessor, NuwaProcessor, train_caption_tokenizer
from nuwa_hf.processing.vocabulary import (
    CAPTION_WORDS_FIELD, caption_words, content_words, known_numerals, known_words, read_folder_tokenizer,
    recorded_caption_words, unknown_words, vocabulary_text, without_unknown_words,
)

# "cyan", "digit" and "that" end in "an", "it", "at": a BPE trained on these learns those endings as whole-word tokens
CAPTIONS = [f"a {colour} {digit}" for colour in ("cyan", "red") for digit in range(10)]
CAPTIONS += [f"the digit {word} in {colour}" for colour in ("cyan", "green") for word in ("eight", "one", "two")]
CAPTIONS += [f"a {digit} that moves up then down" for digit in range(10)]


@pytest.fixture(scope="module")
def trained():
    return train_caption_tokenizer(CAPTIONS, vocab_size=600, model_max_length=16)


def without_record(tokenizer, folder):
    """``tokenizer`` saved and reloaded without its caption-word record: a folder from before the record existed."""
    tokenizer.save_pretrained(folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    del config[CAPTION_WORDS_FIELD]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return AutoTokenizer.from_pretrained(folder)


def test_the_trained_tokenizer_records_the_captions_words_and_they_round_trip(trained, tmp_path):
    expected = sorted({word for caption in CAPTIONS for word in caption.split()})
    assert caption_words(CAPTIONS) == expected == trained.init_kwargs[CAPTION_WORDS_FIELD]
    trained.save_pretrained(tmp_path / "tokenizer")
    assert json.loads((tmp_path / "tokenizer" / "tokenizer_config.json").read_text())[CAPTION_WORDS_FIELD] == expected
    assert recorded_caption_words(AutoTokenizer.from_pretrained(tmp_path / "tokenizer")) == frozenset(expected)
    # through the processor, as a model folder holds it
    image_processor = NuwaImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    NuwaProcessor(image_processor=image_processor, tokenizer=trained).save_pretrained(tmp_path / "model")
    reloaded = NuwaProcessor.from_pretrained(tmp_path / "model")
    assert recorded_caption_words(reloaded.tokenizer) == frozenset(expected)
    assert recorded_caption_words(read_folder_tokenizer(tmp_path / "model")) == frozenset(expected)


def test_word_endings_the_bpe_learned_are_not_words_the_model_knows(trained, tmp_path):
    """The defect the record fixes: the BPE holds "an", "it", "at" as whole tokens (endings of cyan, digit, that), so
    the old rule, still used for folders without the record, counts them as known; the record does not."""
    for ending in ("an", "it", "at"):
        assert trained.tokenize(ending) == [ending + "</w>"], ending  # one whole-word token
    legacy = without_record(trained, tmp_path)
    assert recorded_caption_words(legacy) is None
    assert unknown_words(legacy, "an eight in cyan") == []
    assert without_unknown_words(legacy, "an eight in cyan") == ("an eight in cyan", [])
    assert unknown_words(trained, "an eight in cyan at it") == ["an", "at", "it"]
    assert without_unknown_words(trained, "An eight in CYAN") == ("eight in CYAN", ["an"])
    # both rules list the same words for people: the old one already left word endings out of the list
    assert known_words(trained) == known_words(legacy) == sorted(w for w in caption_words(CAPTIONS) if w.isalpha())
    assert known_numerals(trained) == known_numerals(legacy) == [str(d) for d in range(10)]
    assert vocabulary_text(trained) == vocabulary_text(legacy)


def test_only_the_captions_words_and_punctuation_are_known(trained):
    assert unknown_words(trained, "A RED 7") == []
    assert unknown_words(trained, "a red 7, please!") == [",", "please", "!"]
    assert unknown_words(trained, "a purple cat and a purple dog") == ["purple", "cat", "and", "dog"]
    assert without_unknown_words(trained, "a purple cat, red") == ("a red", ["purple", "cat", ","])
    # a word the left-out words put right after itself is read once; a repeat the user typed stays
    assert without_unknown_words(trained, "a picture of a red 7") == ("a red 7", ["picture", "of"])
    assert without_unknown_words(trained, "A picture of a red 7") == ("A red 7", ["picture", "of"])
    assert without_unknown_words(trained, "the the red 7 please") == ("the the red 7", ["please"])


def test_content_words_leave_out_the_captions_fillers(trained):
    """Fillers are the words the built-in captions put around what they describe ("a", "the", "digit", "in", "is",
    "moves", "that", "then", ","): without a colour, digit or motion word a reading says nothing about the picture."""
    assert content_words(trained, "a") == [] and content_words(trained, "the digit in a") == []
    assert content_words(trained, "a digit that moves") == [] and content_words(trained, "then") == []
    assert content_words(trained, "eight in cyan") == ["eight", "cyan"]
    assert content_words(trained, "a 7 that moves up then down") == ["7", "up", "down"]
    assert content_words(trained, "a purple cat") == []  # unknown words are no content either


def test_a_malformed_record_is_an_error_naming_the_fix(trained, tmp_path):
    trained.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config[CAPTION_WORDS_FIELD] = "a red 7"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"'caption_words' \(tokenizer_config.json\) must be a list of words.*"
                                         r"caption_words\(captions\)"):
        unknown_words(AutoTokenizer.from_pretrained(tmp_path), "a red 7")


def test_a_folder_saved_after_padded_encoding_reads_its_words_without_the_padding(trained, tmp_path):
    """Training encodes captions with padding="max_length" and truncation, which the saved tokenizer.json keeps; the
    folder reader (nuwa-hf generate --help, the model card) must still see a word as its pieces, not padded to the
    prompt length, or a folder without the record would know no word at all."""
    legacy = without_record(trained, tmp_path / "legacy")
    legacy(["a red 7"], padding="max_length", truncation=True, max_length=16)  # as training's encode_text does
    legacy.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "tokenizer.json").read_text())
    assert saved["padding"] is not None  # the premise: the padding is in the file
    folder = read_folder_tokenizer(tmp_path / "saved")
    assert recorded_caption_words(folder) is None
    assert unknown_words(folder, "a red 7 in cyan") == []
    assert known_words(folder) == known_words(legacy)


def test_a_finetuning_runs_caption_words_join_the_record(trained, tmp_path):
    from nuwa_hf.processing.vocabulary import add_caption_words

    trained.save_pretrained(tmp_path / "with")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "with")
    assert unknown_words(tokenizer, "a red cat") == ["cat"]
    assert add_caption_words(tokenizer, ["a red cat", "a dog sleeping"]) == (["cat", "dog", "sleeping"], False)
    assert unknown_words(tokenizer, "a red cat") == [] and unknown_words(tokenizer, "a purple cat") == ["purple"]
    tokenizer.save_pretrained(tmp_path / "saved")  # the record travels with the folder
    assert {"cat", "dog", "red", "cyan"} <= recorded_caption_words(AutoTokenizer.from_pretrained(tmp_path / "saved"))
    assert add_caption_words(tokenizer, ["a red cat"]) == ([], False)  # nothing new the second time


def test_a_tokenizer_without_a_record_gets_one_of_the_words_it_knew_and_the_new_captions(trained, tmp_path):
    """An older folder (or a stock CLIPTokenizer) judges words by its whole-word tokens; fine-tuning it on captions
    with new words starts a record: every word known before stays known (word endings such as "an" included, as
    before), the captions' words become known, and a word neither had is still unknown."""
    from nuwa_hf.processing.vocabulary import add_caption_words, whole_word_rule_words

    legacy = without_record(trained, tmp_path / "legacy")
    before = whole_word_rule_words(legacy)
    assert {"a", "red", "cyan", "7", "an", "it"} <= set(before) and "cat" not in before
    assert all(unknown_words(legacy, word) == [] for word in before)  # the rule's words, exactly
    assert unknown_words(legacy, "a red cat") == ["cat"]

    assert add_caption_words(legacy, ["a red cat", "a dog sleeping"]) == (["cat", "dog", "sleeping"], True)
    assert recorded_caption_words(legacy) == frozenset(before) | {"cat", "dog", "sleeping"}
    legacy.save_pretrained(tmp_path / "saved")
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "saved")
    assert recorded_caption_words(reloaded) == recorded_caption_words(legacy)
    assert unknown_words(reloaded, "an eight in cyan then a red cat") == []
    assert unknown_words(reloaded, "a purple cat") == ["purple"]
    assert add_caption_words(reloaded, ["a red cat"]) == ([], False)  # the record is there now