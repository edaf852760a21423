"""Pages under /accounts/: sign-in, sign-up, passwords (Django's auth views) and API tokens.
The URL names of the auth pages stay un-namespaced: Django's auth views look them up that way."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views
from .forms import LimitedPasswordResetForm

token_patterns = (
    [
        path("", views.token_page, name="list"),
        path("<int:pk>/revoke/", views.token_revoke_page, name="revoke"),
    ],
    "api-tokens",
)

urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("password/change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path(
        "password/reset/",
        auth_views.PasswordResetView.as_view(form_class=LimitedPasswordResetForm),
        name="password_reset",
    ),
    path("password/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"
    ),
    path("password/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("api-tokens/", include(token_patterns)),
]
