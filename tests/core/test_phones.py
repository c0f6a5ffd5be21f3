import pytest

from hotline.core.phones import normalise_phone

SAME_MOBILE = [
    "13812349999",
    "138-1234-9999",
    "138 1234 9999",
    "+8613812349999",
    "+86 138 1234 9999",
    "0086-138-1234-9999",
    "8613812349999",
    "(+86)13812349999",
]


@pytest.mark.parametrize("spelling", SAME_MOBILE)
def test_every_spelling_of_a_mobile_is_its_eleven_digits(spelling):
    assert normalise_phone(spelling) == "13812349999"


@pytest.mark.parametrize(
    "spelling",
    [
        "0756-2123456",
        "(0756)2123456",
        "0756 2123456",
        "2123456",
        "+86 756 2123456",
        "0086-756-2123456",
    ],
)
def test_a_zhuhai_landline_carries_its_area_code(spelling):
    assert normalise_phone(spelling) == "07562123456"


def test_other_cities_and_countries_keep_what_tells_them_apart():
    assert normalise_phone("020-87654321") == "02087654321"  # Guangzhou
    assert normalise_phone("+852 6123 4567") == "+85261234567"  # Hong Kong
    assert normalise_phone("00853 6612 3456") == "+85366123456"  # Macao
    assert normalise_phone("+8526123 4567") != normalise_phone("61234567")


def test_what_is_not_a_number_is_only_trimmed():
    assert normalise_phone("") == ""
    assert normalise_phone("  ") == ""
    assert normalise_phone("110") == "110"
    assert normalise_phone("unknown") == "unknown"


def test_the_local_area_code_is_a_setting(monkeypatch):
    from hotline.core.settings import get_settings

    monkeypatch.setenv("HOTLINE_LOCAL_AREA_CODE", "020")
    get_settings.cache_clear()
    try:
        assert normalise_phone("87654321") == "02087654321"
    finally:
        monkeypatch.delenv("HOTLINE_LOCAL_AREA_CODE")
        get_settings.cache_clear()
