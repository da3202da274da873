import pytest

from tessera.ingest.media import SortingMethod, sort_names

NAMES = ["img10.png", "img2.png", "IMG1.png", "img1.png", "a/img3.png", "img.png", "b10/x.png"]


def test_lexicographical_is_code_point_order() -> None:
    assert sort_names(NAMES, "lexicographical") == [
        "IMG1.png",
        "a/img3.png",
        "b10/x.png",
        "img.png",
        "img1.png",
        "img10.png",
        "img2.png",
    ]


def test_natural_compares_numbers_as_numbers_and_ignores_case() -> None:
    assert sort_names(NAMES, SortingMethod.NATURAL) == [
        "a/img3.png",
        "b10/x.png",
        "img.png",
        "IMG1.png",
        "img1.png",
        "img2.png",
        "img10.png",
    ]


def test_natural_order_does_not_depend_on_the_input_order() -> None:
    names = ["frame_1.jpg", "Frame_1.jpg", "frame_01.jpg", "frame_10.jpg", "frame_9.jpg"]

    forward = sort_names(names, "natural")
    backward = sort_names(list(reversed(names)), "natural")

    assert forward == backward
    assert forward[-2:] == ["frame_9.jpg", "frame_10.jpg"]
    # Equal up to case and leading zeros: code point order breaks the tie.
    assert forward[:3] == ["Frame_1.jpg", "frame_01.jpg", "frame_1.jpg"]


def test_natural_sorts_directories_component_by_component() -> None:
    names = ["s10/1.jpg", "s2/10.jpg", "s2/9.jpg", "s1.jpg"]

    assert sort_names(names, "natural") == ["s1.jpg", "s2/9.jpg", "s2/10.jpg", "s10/1.jpg"]


def test_predefined_keeps_the_given_order_and_copies() -> None:
    names = ["c", "a", "b"]

    result = sort_names(names, "predefined")

    assert result == ["c", "a", "b"]
    result.append("d")
    assert names == ["c", "a", "b"]


def test_random_is_reproducible_for_a_seed() -> None:
    names = [f"{i}.jpg" for i in range(50)]

    first = sort_names(names, "random", seed=7)

    assert first == sort_names(names, "random", seed=7)
    assert first != sort_names(names, "random", seed=8)
    assert first != names
    assert sorted(first) == sorted(names)


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown sorting method 'alphabetical'"):
        sort_names(["a"], "alphabetical")
