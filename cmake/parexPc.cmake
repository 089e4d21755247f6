# SPDX-License-Identifier: MIT
# cmake/parexPc.cmake - run by `cmake --install` (see CMakeLists.txt) to
# write parex.pc for the prefix actually installed into, so that
# `--prefix` chooses the form:
#   - a prefix whose include or library directory the compiler searches
#     anyway (/usr): no -I or -L for it, since naming a system directory
#     moves it ahead of the user's own search paths and changes which copy
#     of other libraries is found; prefix= is the absolute path;
#   - any other prefix: -I and -L, with prefix= found from the .pc file's
#     own folder (${pcfiledir}), so the installed tree can be moved.
# Inputs: PX_PC_IN, PX_PC_OUT, PX_INCLUDEDIR, PX_LIBDIR (as configured,
# relative or absolute), PX_IMPLICIT_INC, PX_IMPLICIT_LIB, PX_VERSION.
get_filename_component(px_prefix "${CMAKE_INSTALL_PREFIX}" ABSOLUTE)
foreach(kind INCLUDEDIR LIBDIR)
  if(IS_ABSOLUTE "${PX_${kind}}")
    set(px_full_${kind} "${PX_${kind}}")
  else()
    set(px_full_${kind} "${px_prefix}/${PX_${kind}}")
  endif()
endforeach()

set(px_sys_inc OFF)
set(px_sys_lib OFF)
if(px_full_INCLUDEDIR IN_LIST PX_IMPLICIT_INC)
  set(px_sys_inc ON)
endif()
if(px_full_LIBDIR IN_LIST PX_IMPLICIT_LIB)
  set(px_sys_lib ON)
endif()

if(px_sys_inc OR px_sys_lib)
  set(PX_PC_PREFIX "${px_prefix}")
else()
  file(RELATIVE_PATH px_rel "${px_full_LIBDIR}/pkgconfig" "${px_prefix}")
  string(REGEX REPLACE "/$" "" px_rel "${px_rel}")
  set(PX_PC_PREFIX "\${pcfiledir}/${px_rel}")
endif()
# libdir and includedir as the prefix-relative form when they lie inside it.
foreach(kind INCLUDEDIR LIBDIR)
  file(RELATIVE_PATH px_in "${px_prefix}" "${px_full_${kind}}")
  if(px_in MATCHES "^\\.\\./" OR IS_ABSOLUTE "${px_in}")
    set(PX_PC_${kind} "${px_full_${kind}}")
  else()
    set(PX_PC_${kind} "\${prefix}/${px_in}")
  endif()
endforeach()
set(PX_PC_CFLAGS "-I\${includedir}")
if(px_sys_inc)
  set(PX_PC_CFLAGS "")
endif()
set(PX_PC_LIBS "-L\${libdir} -lparex")
if(px_sys_lib)
  set(PX_PC_LIBS "-lparex")
endif()
set(PROJECT_VERSION "${PX_VERSION}")
configure_file("${PX_PC_IN}" "${PX_PC_OUT}" @ONLY)
file(INSTALL "${PX_PC_OUT}" DESTINATION "${px_full_LIBDIR}/pkgconfig")
