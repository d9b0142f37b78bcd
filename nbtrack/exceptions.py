"""Every error nbtrack raises on purpose.

The tree::

    NbtrackError                    base of everything below; catch this to catch them all
    ├── TrackingURIError            the tracking URI has an unsupported scheme or cannot be used
    ├── StoreError                  the SQLite store cannot be opened or written
    │   └── SchemaVersionError      the store was written by a newer nbtrack
    ├── NotFoundError               no run / experiment / artifact with that id or name
    │   ├── RunNotFoundError
    │   ├── ExperimentNotFoundError
    │   ├── ModelNotFoundError      no saved model at that URI or path
    │   ├── RegisteredModelNotFoundError
    │   └── ModelVersionNotFoundError   no such version, stage or alias of a registered model
    ├── InvalidInputError           bad input: also a ValueError, so ``except ValueError`` works
    │   ├── InvalidKeyError         a key that is too long or has characters not allowed
    │   ├── ValueTooLongError       a param or tag value over its limit
    │   ├── ParamConflictError      a param re-logged with a different value
    │   ├── ReservedTagError        a tag under the reserved ``nbtrack.`` prefix
    │   ├── InvalidModelURIError    a model URI nbtrack cannot parse (lists the accepted forms)
    │   ├── ModelSchemaError        prediction input that does not match the model's signature
    │   ├── AlreadyExistsError      an experiment or registered model of that name exists already
    │   └── LocalFileNotFoundError  a file to log as an artifact is missing (a FileNotFoundError)
    ├── FilterSyntaxError           a malformed filter (also a ValueError); points at the token
    ├── RunStateError               the run's state forbids it (e.g. logging to a deleted run)
    └── ForceRequiredError          a destructive registry operation asked without ``force=True``

``TypeError`` (not an ``NbtrackError``) is raised for a metric value that is not a real number,
as Python itself does for wrong types.

Warnings are ``NbtrackWarning``. ``MlflowException`` is another name for ``NbtrackError``, for
code written against MLflow (``except mlflow.exceptions.MlflowException``).
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "ExperimentNotFoundError",
    "FilterSyntaxError",
    "ForceRequiredError",
    "InvalidInputError",
    "InvalidKeyError",
    "InvalidModelURIError",
    "LocalFileNotFoundError",
    "MlflowException",
    "ModelNotFoundError",
    "ModelSchemaError",
    "ModelVersionNotFoundError",
    "NbtrackError",
    "NbtrackWarning",
    "NotFoundError",
    "ParamConflictError",
    "RegisteredModelNotFoundError",
    "ReservedTagError",
    "RunNotFoundError",
    "RunStateError",
    "SchemaVersionError",
    "StoreError",
    "TrackingURIError",
    "ValueTooLongError",
]


class NbtrackError(Exception):
    """Base class of every error nbtrack raises on purpose.

    ``error_code`` is MLflow's name for the kind of error (``RESOURCE_DOES_NOT_EXIST``,
    ``INVALID_PARAMETER_VALUE``, ...), for code that checks ``exc.error_code`` as it does with
    MLflow's ``MlflowException``.
    """

    error_code = "INTERNAL_ERROR"

    def __init__(self, message: object = "", *args: object, error_code: str | None = None):
        super().__init__(message, *args)
        if error_code is not None:  # MlflowException(message, error_code=...)
            self.error_code = error_code

    @property
    def message(self) -> str:
        """The message, as MLflow's ``MlflowException.message``."""
        return str(self.args[0]) if self.args else ""


class TrackingURIError(NbtrackError, ValueError):
    """The tracking URI is malformed or names a scheme nbtrack does not support."""

    error_code = "INVALID_PARAMETER_VALUE"


class StoreError(NbtrackError):
    """The store could not be opened, migrated or written."""


class SchemaVersionError(StoreError):
    """The store's schema is newer than this nbtrack understands."""


class NotFoundError(NbtrackError, LookupError):
    """No object with that id or name."""

    error_code = "RESOURCE_DOES_NOT_EXIST"


class RunNotFoundError(NotFoundError):
    """No run with that id."""


class ExperimentNotFoundError(NotFoundError):
    """No experiment with that id or name."""


class ModelNotFoundError(NotFoundError):
    """No saved model (no ``MLmodel.json``) at that URI or path."""


class RegisteredModelNotFoundError(NotFoundError):
    """No registered model with that name."""


class ModelVersionNotFoundError(NotFoundError):
    """No version, stage or alias of a registered model matching the request."""


class InvalidInputError(NbtrackError, ValueError):
    """An argument has a value that is not allowed."""

    error_code = "INVALID_PARAMETER_VALUE"


class InvalidKeyError(InvalidInputError):
    """A param, metric or tag key is empty, too long or has characters that are not allowed."""


class ValueTooLongError(InvalidInputError):
    """A param or tag value is longer than its limit."""


class ParamConflictError(InvalidInputError):
    """A param was logged again with a value different from the one already stored."""


class ReservedTagError(InvalidInputError):
    """A tag key uses the prefix that nbtrack keeps for its own tags."""


class InvalidModelURIError(InvalidInputError):
    """A model URI that is not one of the accepted forms (the message lists them)."""


class ModelSchemaError(InvalidInputError):
    """Prediction input that does not match the model's signature (missing columns, bad types)."""


class AlreadyExistsError(InvalidInputError):
    """An object with that name exists already (an experiment, a registered model)."""

    error_code = "RESOURCE_ALREADY_EXISTS"


class LocalFileNotFoundError(InvalidInputError, FileNotFoundError):
    """A local file or folder given to ``log_artifact(s)`` does not exist (also a
    ``FileNotFoundError``, as MLflow raises)."""


class FilterSyntaxError(NbtrackError, ValueError):
    """A ``filter_string`` or ``order_by`` clause could not be parsed.

    ``position`` is the 0-based offset of the offending token in ``text``.
    """

    error_code = "INVALID_PARAMETER_VALUE"

    def __init__(self, message: str, text: str = "", position: int = -1) -> None:
        self.text = text
        self.position = position
        if text and position >= 0:
            pointer = " " * position + "^"
            message = f"{message}\n  {text}\n  {pointer}"
        super().__init__(message)


class RunStateError(NbtrackError):
    """The run's state does not allow this operation."""

    error_code = "INVALID_STATE"


class ForceRequiredError(NbtrackError):
    """A destructive operation (deleting a registered model, or a version in Production) was
    asked for without ``force=True``; nothing was changed."""

    error_code = "INVALID_STATE"


class NbtrackWarning(UserWarning):
    """Warnings nbtrack emits (for instance when a run is ended for you)."""


#: MLflow's name for the base of its errors, for ``except mlflow.exceptions.MlflowException``.
MlflowException = NbtrackError
