"""Small forms for the user pages (accounts are django-allauth's own forms)."""

from django import forms


class ConversationSearchForm(forms.Form):
    q = forms.CharField(
        label="Search your conversations",
        required=False,
        max_length=200,
        widget=forms.SearchInput(attrs={"placeholder": "Words from a transcript or title"}),
    )


class AccessTokenCreateForm(forms.Form):
    name = forms.CharField(
        label="Token name",
        max_length=100,
        help_text="Something to recognise it by, like the app or machine that will use it.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "e.g. laptop script"}),
    )
