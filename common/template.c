/* placeholder: implemented by the templates work */
#include "template.h"
