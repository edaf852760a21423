"""Forms of the portfolio pages. They parse input only; the rules (quantity above zero, no future
date, no oversell) live in the services, whose ValidationError lands on the form's fields."""

from __future__ import annotations

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from forecasting.models import SYMBOL_RE

from .models import Portfolio, Transaction
from .transactions_csv import CSV_HELP, MAX_CSV_BYTES, MAX_CSV_MB, csv_upload_text

DECIMAL = {"max_digits": 28, "decimal_places": 8}


def add_service_errors(form: forms.Form, exc: ValidationError, rename: dict[str, str] | None = None) -> None:
    """Put a service's ValidationError on the form: each message on its field when the form has
    that field (after `rename`), else above the form."""
    rename = rename or {}
    errors = exc.error_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.error_list}
    for name, field_errors in errors.items():
        name = rename.get(name, name)
        form.add_error(name if name in form.fields else None, field_errors)


def clean_symbol_text(value: str) -> str:
    symbol = value.strip().upper()
    if not SYMBOL_RE.fullmatch(symbol):
        raise ValidationError("A Binance symbol is 2 to 20 letters and digits, e.g. BTCUSDT.")
    return symbol


class PortfolioForm(forms.Form):
    name = forms.CharField(max_length=Portfolio._meta.get_field("name").max_length)
    description = forms.CharField(required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))

    def add_service_errors(self, exc: ValidationError) -> None:
        errors = exc.error_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.error_list}
        for name, field_errors in errors.items():
            for error in field_errors:
                if error.code == "unique_together":
                    # The model's message names the owner field; say it the way a person would.
                    self.add_error(
                        "name", f"You already have a portfolio called “{self.data.get('name', '').strip()}”."
                    )
                else:
                    self.add_error(name if name in self.fields else None, error)


class TransactionForm(forms.Form):
    symbol = forms.CharField(
        label="Asset",
        max_length=20,
        help_text="Binance pair, e.g. BTCUSDT.",
        widget=forms.TextInput(attrs={"list": "tracked-assets", "autocomplete": "off", "autocapitalize": "characters"}),
    )
    # Shown only when the symbol is not tracked yet: ticking it starts tracking on save.
    track = forms.BooleanField(required=False)
    kind = forms.ChoiceField(choices=Transaction.Kind.choices)
    quantity = forms.DecimalField(
        **DECIMAL,
        help_text="Units of the asset.",
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )
    unit_price = forms.DecimalField(
        label="Unit price",
        **DECIMAL,
        help_text="Price of one unit in the quote currency (0 for a free transfer).",
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )
    fee = forms.DecimalField(
        required=False,
        **DECIMAL,
        help_text="In the quote currency; empty means 0.",
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )
    executed_at = forms.DateTimeField(
        label="Date and time (UTC)",
        # step=1 so that times with seconds (e.g. from a CSV import) can be edited.
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}, format="%Y-%m-%dT%H:%M:%S"),
    )
    note = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}))
    # One key per form shown (see Transaction.submission_key); hidden, and only on the add form.
    submission_key = forms.RegexField(regex=r"^[0-9a-f]{32}$", required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.untracked_symbol: str | None = None

    def clean_symbol(self) -> str:
        return clean_symbol_text(self.cleaned_data["symbol"])

    def clean_fee(self):
        fee = self.cleaned_data.get("fee")
        return 0 if fee is None else fee

    def offer_tracking(self, symbol: str, message: str) -> None:
        self.untracked_symbol = symbol
        # The bound field copied the label when the form was cleaned: set both.
        self.fields["track"].label = self["track"].label = f"Track {symbol}"
        self.add_error("symbol", message)


class PriceAtForm(forms.Form):
    """The price look-up of the transaction form: a symbol and a time, read as UTC when it carries
    no offset (as the form's date field is)."""

    symbol = forms.CharField(max_length=20)
    time = forms.DateTimeField()

    def clean_symbol(self) -> str:
        return clean_symbol_text(self.cleaned_data["symbol"])


class TransactionFilterForm(forms.Form):
    asset = forms.ChoiceField(required=False)
    kind = forms.ChoiceField(required=False, choices=[("", "All kinds"), *Transaction.Kind.choices])
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, symbols: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["asset"].choices = [("", "All assets"), *((s, s) for s in symbols)]

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "“To” is before “From”.")
        return data


class CsvImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text=f"UTF-8, at most {MAX_CSV_MB} MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self) -> str:
        return csv_upload_text(self.cleaned_data["file"].read(MAX_CSV_BYTES + 1))


CSV_COLUMNS_HELP = list(CSV_HELP.items())


class ExchangeConnectionForm(forms.Form):
    label = forms.CharField(required=False, max_length=100, help_text="Optional, e.g. “Main account”.")
    api_key = forms.CharField(
        label="API key",
        max_length=128,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    api_secret = forms.CharField(
        label="Secret key",
        max_length=128,
        # Never sent back to the browser, also when the form shows errors.
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False),
        help_text="Stored encrypted and never shown again.",
    )
