"""The landing page and sign-up; sign-in, sign-out and passwords are Django's own auth views."""

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods


def home(request):
    if request.user.is_authenticated:
        return redirect("portfolio:dashboard")
    return render(request, "landing.html")


class SignUpForm(UserCreationForm):
    email = forms.EmailField(required=False, label="E-mail (optional)",
                             help_text="Only used to reset a forgotten password.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("portfolio:dashboard")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        messages.success(request, f"Welcome, {user.get_username()}. Create your first portfolio below.")
        return redirect("portfolio:dashboard")
    return render(request, "registration/signup.html", {"form": form})
