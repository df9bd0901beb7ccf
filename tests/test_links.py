"""Which link an excerpt gets: own URL, then the template, then newsdesk's page, else none."""

from __future__ import annotations

import pytest

from retrieval.links import LinkPolicy, LinkTemplateError


def url(policy, **article):
    fields = {
        "article_id": "business/312",
        "url": None,
        "source": "business/312.txt",
        "published": "2016-06-21T12:02:16",
        "category": "business",
        "ordinal": 3,
    }
    fields.update(article)
    return policy.url_for(**fields)


def test_own_url_wins():
    policy = LinkPolicy("https://t.example/{id}", "https://nd.example")
    assert url(policy, url="https://bbc.example/a") == "https://bbc.example/a"


def test_template_when_no_own_url():
    assert url(LinkPolicy("https://t.example/{id}", "https://nd.example")) == "https://t.example/business/312"


def test_template_fields():
    policy = LinkPolicy("https://t.example/{category}/{published:%Y/%m/%d}/{source}")
    assert url(policy) == "https://t.example/business/2016/06/21/business/312.txt"


def test_template_needing_a_date_falls_back_to_the_page_for_undated_articles():
    policy = LinkPolicy("https://t.example/{published:%Y}/{id}", "https://nd.example/")
    assert url(policy, published=None) == "https://nd.example/articles/business/312#p3"


def test_own_page_points_at_the_passage_and_quotes_odd_ids():
    policy = LinkPolicy(None, "https://nd.example")
    assert url(policy, article_id="a b/ü?") == "https://nd.example/articles/a%20b/%C3%BC%3F#p3"


def test_no_link_at_all_without_url_template_or_public_address():
    assert url(LinkPolicy()) is None


def test_non_web_own_urls_are_not_used():
    assert url(LinkPolicy(None, "https://nd.example"), url="javascript:alert(1)").startswith(
        "https://nd.example/"
    )


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("https://t.example/{slug}", "unknown field {slug}"),
        ("https://t.example/", "must contain {id} or {source}"),
        ("ftp://t.example/{id}", "http:// or https://"),
        ("https://t.example/{id", "not a valid template"),
        ("https://t.example/{published:%Y/%m}/{id}/{0}", "unknown field {0}"),
    ],
)
def test_bad_templates_are_refused_with_the_reason(template, reason):
    with pytest.raises(LinkTemplateError, match=reason.replace("{", r"\{").replace("}", r"\}")):
        LinkPolicy(template)
