"""Object stores (``s3://``, ``gs://``, ...) through pyarrow: open a URI, read an object,
and say in one line what went wrong.

Credentials, endpoint and region come from the standard environment of each process
that touches the store, as every AWS tool reads it: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` (or a profile, an instance role), ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_S3`` for a store other than AWS (MinIO, SeaweedFS, ...) and
``AWS_REGION``. The endpoint travels with the file system object to Ray's workers; the
credentials do not (each worker uses its own).

What an error means decides what the run does:

- Opening or listing fails (wrong credentials, a missing bucket, an endpoint that
  refuses): :class:`~gender_cli.errors.GenderCliError`, one line, before any row.
- Reading one object fails while the store still answers (the object vanished, or may
  not be read): that file's ``unreadable`` row, as a local file would get.
- Reading fails because the store stopped answering (the connection was lost, the
  store is overloaded or down): :class:`~gender_cli.errors.StoreLost`, which stops the
  run instead of writing rows for files that are fine. The rows written so far stay
  valid and a resumed run reads the rest. A failure is the store's when its error is a
  network or server one (:data:`STORE_FAILURES`) or when the store's root can no longer
  be looked up either.
"""

from __future__ import annotations

from contextlib import contextmanager

from gender_cli.errors import GenderCliError, StoreLost, first_line

# Error kinds (as pyarrow's S3 messages name them) that are the store's, not an object's.
STORE_FAILURES = ("NETWORK_CONNECTION", "REQUEST_TIMEOUT", "SERVICE_UNAVAILABLE", "INTERNAL_FAILURE", "SLOW_DOWN",
                  "THROTTLING", "curlCode")
BUCKET_STORES = ("s3", "gcs", "abfs")  # pyarrow's type_name of stores whose paths start with a bucket
# What to check for each kind of refusal, in the one-line message.
HINTS = (
    (("ACCESS_DENIED", "InvalidAccessKeyId", "SignatureDoesNotMatch", "EXPIRED_TOKEN", "UNRECOGNIZED_CLIENT"),
     "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the profile or role in use)"),
    (("NETWORK_CONNECTION", "curlCode"), "check AWS_ENDPOINT_URL and that the store is up"),
)


def open_store(uri: str):
    """``(filesystem, path)`` for ``uri``; an unparsable URI or a store that cannot be
    set up is a one-line error."""
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for unparsable URIs
        raise store_error(f"cannot open {uri}", exc) from None


def store_error(doing: str, exc: BaseException) -> GenderCliError:
    """``doing: <the store's first line>`` with a hint at what to check."""
    text = first_line(exc)
    hint = next((advice for markers, advice in HINTS if any(m in text for m in markers)), None)
    return GenderCliError(f"{doing}: {text}" + (f" ({hint})" if hint else ""))


@contextmanager
def store_errors(doing: str):
    """Any pyarrow failure in the block as one line: ``doing: ...``."""
    try:
        yield
    except GenderCliError:
        raise
    except Exception as exc:  # OSError from the store, ArrowInvalid for names it refuses
        raise store_error(doing, exc) from None


def missing_bucket(filesystem, path: str) -> str | None:
    """The bucket of ``path`` in a store of buckets when it does not exist (``NotFound``
    on the path says no more)."""
    import pyarrow.fs as pafs

    bucket = path.split("/", 1)[0]
    if filesystem.type_name not in BUCKET_STORES:
        return None
    return bucket if filesystem.get_file_info(bucket).type == pafs.FileType.NotFound else None


def read_object(filesystem, path: str, root: str, shown: str) -> bytes:
    """The bytes of the object ``path``, read raw (no decompression by extension).

    An object that cannot be read while ``root`` (the listed folder) still can be looked
    up raises its OSError (an ``unreadable`` row); a store that stopped answering raises
    :class:`StoreLost` naming ``shown`` (the object as its row names it).
    """
    try:
        with filesystem.open_input_stream(path, compression=None) as stream:
            return stream.read()
    except FileNotFoundError:
        raise
    except OSError as exc:
        if _store_failure(exc) or not _answers(filesystem, root):
            raise StoreLost(f"lost the object store while reading {shown}: {first_line(exc)}. The rows written "
                            "so far are complete; rerun the same command with --resume to finish") from None
        raise


def _store_failure(exc: BaseException) -> bool:
    text = str(exc)
    return any(marker in text for marker in STORE_FAILURES)


def _answers(filesystem, root: str) -> bool:
    try:
        filesystem.get_file_info(root)
    except OSError:
        return False
    return True
