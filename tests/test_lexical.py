"""Lexical helpers (indexer/lexical.py) on hand-made texts: runs of words held in order."""

from __future__ import annotations

from indexer.lexical import forget_highlights, phrase_share, phrases, terms

ANSWER = ("Docker reports that the port is already allocated when an earlier container still holds it: "
          "stop it with docker stop, then start the new one.")


def test_words_pasted_from_a_text_are_all_held_and_a_paraphrase_of_them_is_not():
    pasted = phrases(terms("the port is already allocated when an earlier container still holds it"))
    assert len(pasted) >= 3
    assert phrase_share(pasted, ANSWER) == 1.0
    # The same words, shuffled: BM25 scores them as it scores the pasted text; a run of three does not.
    shuffled = phrases(terms("container allocated earlier port holds already"))
    assert phrase_share(shuffled, ANSWER) == 0.0
    half = phrases(terms("port already allocated when the network is down"))
    assert 0.0 < phrase_share(half, ANSWER) < 1.0


def test_stop_words_and_word_forms_do_not_break_a_run():
    # "is", "the", "an" are left out as BM25 leaves them out; stems match ("allocates" / "allocated").
    assert phrase_share(phrases(terms("Port already allocates, when earlier containers")), ANSWER) == 1.0


def test_a_query_of_fewer_than_three_terms_has_no_run_to_hold():
    assert len(phrases(terms("docker port"))) == 0
    assert phrase_share(phrases(terms("docker port")), ANSWER) == 0.0


def test_analysed_texts_are_forgotten_with_the_highlights():
    from indexer.lexical import _text_phrases

    phrase_share(phrases(terms("port already allocated")), ANSWER)
    assert _text_phrases.cache_info().currsize >= 1
    forget_highlights()
    assert _text_phrases.cache_info().currsize == 0
