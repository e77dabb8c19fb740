"""Page text clean-up at extraction: furniture lines dropped, TeX made readable, prose untouched."""

from __future__ import annotations

import pytest

from indexer.cleanup import clean_text, drop_furniture, is_furniture, readable_math


@pytest.mark.parametrize("line", [
    "Photo by G. Crescoli on Unsplash",
    "Lion photo by Kevin Pluck",
    "Header image by the author",
    "Image credit: NASA",
    "Cover image via Pexels",
    "Originally posted on Towards Data Science.",
    "This article was originally published at example.com",
    "Share on Twitter",
    "Share this article",
    "Follow us on LinkedIn",
    "Subscribe to our newsletter for weekly tips!",
    "We use cookies to improve your experience. By continuing you agree to our cookie policy.",
    "Accept all cookies",
    '<Interactive Component={lazy(() => import("./NeuralNetwork.jsx"))} />',
    "<br/>",
    '<div class="share">',
])
def test_furniture_lines_are_recognised(line):
    assert is_furniture(line)


@pytest.mark.parametrize("line", [
    "Picture by picture, the network learns to tell the digits apart, and each layer adds a little more detail.",
    "Photographs of handwritten digits make up the training set.",
    "Share prices fell after the announcement.",
    "Image classification is where convolutional networks first shone.",
    "Figure 0: the feature",
    "Follow the gradient downhill until the cost stops falling.",
    "The bias lets a neuron fire even when all of its inputs are zero, which a weight alone cannot do.",
    "a < b and c > d",
    "",
])
def test_prose_is_not_furniture(line):
    assert not is_furniture(line)


def test_drop_furniture_keeps_every_other_line_in_order():
    text = "Understanding log loss\nPhoto by G. Crescoli on Unsplash\nLet us start with ten points.\nShare on Twitter"
    assert drop_furniture(text) == "Understanding log loss\nLet us start with ten points."


@pytest.mark.parametrize("tex, readable", [
    ("the rate $\\partial C / \\partial w$ of change", "the rate ∂ C / ∂ w of change"),
    ("The Hadamard product, $s \\odot t$", "The Hadamard product, s ⊙ t"),
    ("$\\sigma(-1000)$ is closest to", "σ(-1000) is closest to"),
    ("Input $x$: set the activation $a^{1}$", "Input x: set the activation a^1"),
    ("display: $$\\delta^L = \\nabla_a C$$ done", "display: δ^L = ∇_a C done"),
    ("inline \\(\\alpha + \\beta\\) too", "inline α + β too"),
])
def test_tex_becomes_readable_text(tex, readable):
    assert readable_math(tex) == readable


@pytest.mark.parametrize("text", [
    "It costs $5 and $10 at the door.",
    "echo $HOME and $PATH",
    "A lone $ sign, and $ another",
    "price: $3.50 or $4",
    "no math here at all",
])
def test_dollars_that_are_not_tex_are_left_alone(text):
    assert readable_math(text) == text


def test_malformed_tex_never_raises():
    for text in ["$\\frac{1}{$", "$\\left( x$", "$}{$", "$\\begin{matrix} a$", "$" + "{" * 500 + "$"]:
        assert isinstance(clean_text(text), str)


def test_clean_text_does_both():
    text = "Photo by someone on Unsplash\nThe cost $C$ falls as $\\eta$ shrinks."
    assert clean_text(text) == "The cost C falls as η shrinks."
