#include "invoker/api/lambda/lambda_errors.hpp"

namespace thaw::invoker {

LambdaErrorShape lambda_shape(FailureKind kind) {
  using s = http::status;
  switch (kind) {
    case FailureKind::NotFound:
      return {s::not_found, "ResourceNotFoundException"};
    case FailureKind::Conflict:
      return {s::conflict, "ResourceConflictException"};
    case FailureKind::InvalidParameter:
      return {s::bad_request, "InvalidParameterValueException"};
    case FailureKind::InvalidContent:
      return {s::bad_request, "InvalidRequestContentException"};
    case FailureKind::TooLarge:
      return {s::payload_too_large, "RequestTooLargeException"};
    case FailureKind::Throttled:
      return {s::too_many_requests, "TooManyRequestsException"};
    case FailureKind::StorageFull:
      return {s::bad_request, "CodeStorageExceededException"};
    case FailureKind::Forbidden:
      return {s::forbidden, "AccessDeniedException"};
    case FailureKind::Internal:
      break;
  }
  return {s::internal_server_error, "ServiceException"};
}

Response lambda_error(const Failure& f) {
  const auto shape = lambda_shape(f.kind);
  return lambda_error(shape.status, shape.type, f.what(),
                      f.kind == FailureKind::Internal ? "Service" : "User", f.reason);
}

}  // namespace thaw::invoker
