"""What a person's browser would send from the site's forms, read from the pages themselves."""

from __future__ import annotations

import html
import re

from django.urls import reverse


def add_transaction_form(client, portfolio) -> dict:
    """A buy as the add-transaction form sends it, with the submission key that form was given."""
    page = client.get(reverse("portfolio:transaction-add", args=[portfolio.pk])).content.decode()
    key = re.search(r'name="submission_key" value="([0-9a-f]{32})"', page).group(1)
    return {
        "symbol": "BTCUSDT",
        "kind": "buy",
        "quantity": "0.5",
        "unit_price": "100",
        "fee": "0",
        "executed_at": "2022-06-10T10:00:00",
        "note": "",
        "submission_key": key,
    }


def admin_confirmation_data(page: str) -> dict[str, list[str]] | None:
    """What an admin action's confirmation page (roll back, retire) posts back on "Yes": its form's
    hidden fields. None when the page asks nothing."""
    start = page.find('id="champion-change"')
    if start < 0:
        return None
    form = page[start : page.index("</form>", start)]
    data: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form):
        data.setdefault(name, []).append(html.unescape(value))
    return data
