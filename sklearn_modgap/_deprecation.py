"""Public parameters renamed for one spelling per concept, kept working for one release."""

import warnings

from sklearn.utils._param_validation import Hidden, StrOptions

# The default of an old parameter name: not passed.
DEPRECATED = "deprecated"

# The constraint to add for an old name beside the constraints of its values.
DEPRECATED_OPTION = Hidden(StrOptions({DEPRECATED}))


def renamed(old_value, new_value, *, old, new, owner):
    """The value of a renamed parameter: ``old_value`` with a FutureWarning when it was passed.

    Parameters
    ----------
    old_value, new_value
        What was passed under the old and the new name.
    old, new : str
        The two names.
    owner : str
        The class or function they belong to, for the message.

    Returns
    -------
    value
        ``old_value`` when passed, else ``new_value``.
    """
    if isinstance(old_value, str) and old_value == DEPRECATED:
        return new_value
    warnings.warn(
        f"{owner}: the parameter {old!r} is now spelled {new!r}; {old!r} will be removed in the "
        f"next release. Pass {new}={old_value!r}.",
        FutureWarning,
        stacklevel=3,
    )
    return old_value
