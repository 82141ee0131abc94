# Dependency checks that name the Debian package and the command that installs it.
# tools/setup installs all of them; configuring without them stops here with that advice.
function(lockstep_require_header header package what)
  string(MAKE_C_IDENTIFIER "LOCKSTEP_HAVE_${header}" var)
  find_path(${var} NAMES ${header})
  if(NOT ${var})
    message(FATAL_ERROR
      "lockstep: ${what} not found (missing header <${header}>).\n"
      "Install the Debian package '${package}':\n"
      "    tools/setup            (installs everything lockstep needs)\n"
      "or  sudo apt-get install ${package}")
  endif()
endfunction()
