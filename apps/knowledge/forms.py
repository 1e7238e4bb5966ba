from django import forms

from apps.providers.registry import vendor_choices


class UploadForm(forms.Form):
    file = forms.FileField(help_text=".txt, .md, .html or .pdf, at most 20 MB. The same name again replaces it.")


class UrlForm(forms.Form):
    url = forms.URLField(max_length=2000, assume_scheme="https", help_text="A public web page (HTML, text or PDF).")


class SearchForm(forms.Form):
    q = forms.CharField(max_length=1000, label="Question")


class SettingsForm(forms.Form):
    embedding_provider = forms.ChoiceField(choices=())
    model = forms.CharField(max_length=200, required=False,
                            help_text="OpenAI / OpenAI-compatible: the embeddings model, e.g. text-embedding-3-small.")
    dimensions = forms.IntegerField(required=False, min_value=1, max_value=4096,
                                    help_text="Optional: ask for shorter vectors (models that support it).")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["embedding_provider"].choices = vendor_choices("embeddings")

    def settings(self) -> dict:
        data = self.cleaned_data
        return {key: value for key, value in (("model", data.get("model")), ("dimensions", data.get("dimensions")))
                if value not in (None, "")}
