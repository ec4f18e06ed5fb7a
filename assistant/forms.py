"""Small forms for the user pages (accounts are django-allauth's own forms)."""

from django import forms

from assistant.models import STANDING_INSTRUCTIONS_MAX_CHARS, User


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


class StandingInstructionsForm(forms.ModelForm):
    """The user's own standing instructions, added to every web session's system instruction."""

    class Meta:
        model = User
        fields = ["standing_instructions"]
        labels = {"standing_instructions": "Your standing instructions"}
        help_texts = {
            "standing_instructions": (
                f"Told to the assistant at the start of each of your sessions, after the "
                f"server's own instruction and the persona: how to address you, what to keep "
                f"in mind. At most {STANDING_INSTRUCTIONS_MAX_CHARS} characters; applies from "
                f"your next session."
            )
        }
        widgets = {
            "standing_instructions": forms.Textarea(
                attrs={
                    "rows": 4,
                    "maxlength": STANDING_INSTRUCTIONS_MAX_CHARS,
                    "placeholder": "e.g. Call me Sam. I am learning Italian: correct my mistakes.",
                }
            )
        }
